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
// stop words and stemmed. The result is appended to dst.
func terms(dst []string, text string) []string {
	for _, w := range words(text) {
		w = strings.ToLower(w)
		if stopWords[w] {
			continue
		}
		if isASCIILetters(w) {
			w = stem(w)
		}
		dst = append(dst, w)
	}
	return dst
}

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
