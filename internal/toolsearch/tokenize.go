package toolsearch

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// terms splits text into index terms: words are cut at anything that is
// not a letter or digit (so "read_text_file" and "list-dirs" split), at
// camelCase and acronym boundaries ("getHTTPStatus": get, http, status)
// and between letters and digits; then lower-cased, stripped of English
// stop words and stemmed. Each word also gives its unstemmed form,
// marked with a leading '=', so that a query's exact word ("file") counts
// a little more than another word of its stem ("files"). The result is
// appended to dst. memo, if not nil, remembers each word's two terms:
// building an index meets the same words over and over.
func terms(dst []string, text string, memo map[string][2]string) []string {
	for _, w := range words(text) {
		if t, ok := memo[w]; ok {
			if t[0] != "" {
				dst = append(dst, t[0], t[1])
			}
			continue
		}
		var t [2]string
		if lw := strings.ToLower(w); !stopWords[lw] {
			t = [2]string{lw, exactMark + lw}
			if isASCIILetters(lw) {
				t[0] = stem(lw)
			}
			dst = append(dst, t[0], t[1])
		}
		if memo != nil {
			memo[w] = t
		}
	}
	return dst
}

// exactMark starts the term of a word's unstemmed form.
const exactMark = "="

// words cuts text into its words (see terms), unchanged in case.
func words(text string) []string {
	var out []string
	start := -1
	var prev rune
	flush := func(end int) {
		if start >= 0 && end > start {
			out = append(out, text[start:end])
		}
		start = -1
	}
	for i, r := range text {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			flush(i)
			prev = 0
			continue
		}
		if start >= 0 && boundary(prev, r, text[i+utf8.RuneLen(r):]) {
			flush(i)
		}
		if start < 0 {
			start = i
		}
		prev = r
	}
	flush(len(text))
	return out
}

// boundary reports whether a word ends between prev and r; rest is the
// text after r (for "HTTPStatus": the boundary falls before the S because
// a lower-case letter follows it).
func boundary(prev, r rune, rest string) bool {
	switch {
	case unicode.IsDigit(prev) != unicode.IsDigit(r):
		return true
	case unicode.IsLower(prev) && unicode.IsUpper(r):
		return true
	case unicode.IsUpper(prev) && unicode.IsUpper(r):
		next, _ := utf8.DecodeRuneInString(rest)
		return unicode.IsLower(next)
	}
	return false
}

func isASCIILetters(w string) bool {
	for i := 0; i < len(w); i++ {
		if w[i] < 'a' || w[i] > 'z' {
			return false
		}
	}
	return true
}

// stopWords carry no meaning for a search: function words of English,
// and the words every tool description and query shares ("tool", "use").
var stopWords = setOf(`a an and are as at be by can do does for from
	has have how i if in into is it its me my of on or that the their them then
	there these this those to was were what when where which while who will with
	you your please want need some any all via using use tool tools`)

func setOf(text string) map[string]bool {
	m := make(map[string]bool)
	for _, w := range strings.Fields(text) {
		m[w] = true
	}
	return m
}

// synonyms maps a query word's stem to the stems of the words that tools
// name the same action or thing by: the verbs of CRUD-style APIs, which
// people and tool authors word differently ("remove a file",
// delete_file). A synonym counts for Weights.Synonym of a match.
var synonyms = synonymTable(map[string]string{
	"create":    "add new make post send publish write insert register submit",
	"delete":    "remove drop erase destroy forget cancel purge discard",
	"update":    "change modify edit alter patch",
	"get":       "fetch retrieve show view lookup",
	"list":      "show browse enumerate",
	"search":    "find lookup query look",
	"watch":     "subscribe notify notified follow",
	"directory": "folder dir",
	"export":    "download dump",
})

// synonymTable turns {canonical: "word word"} into stem -> stems, both
// ways: a query for "delete" also finds remove_item.
func synonymTable(groups map[string]string) map[string][]string {
	m := make(map[string][]string)
	for canon, words := range groups {
		c := stem(canon)
		for _, w := range strings.Fields(words) {
			s := stem(w)
			m[s] = append(m[s], c)
			m[c] = append(m[c], s)
		}
	}
	return m
}
