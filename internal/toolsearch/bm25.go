package toolsearch

import (
	"math"
	"slices"
	"strings"
	"sync"
)

// Weights are the BM25F parameters: how much a term counts in each field
// and how fast repeated terms saturate (K1), and what a partial match is
// worth. A zero value takes its default (DefaultWeights). How much each
// field's length normalises it (BM25's b) is fixed (lengthNorm).
type Weights struct {
	// Summary is the tool's title and its description's first sentence,
	// which say what the tool does; Description is the rest, which tends
	// to say how.
	Name, Summary, Description, ParamNames, ParamDescriptions float64
	K1                                                        float64
	// Prefix is the share of a term's weight that a query word gets for a
	// term it is a prefix of ("config" for "configuration"); it applies to
	// query words of 3 letters or more.
	Prefix float64
	// Exact is the share of a term's weight that a query word gets, on
	// top, for meeting its very form and not only its stem.
	Exact float64
	// Synonym is the share a query word gets for a term that names the
	// same action ("remove" for delete; see synonyms).
	Synonym float64
}

// DefaultWeights rank a tool's name above its description, and both above
// its parameters: a tool is mostly found by what it does.
func DefaultWeights() Weights {
	return Weights{Name: 3, Summary: 1.5, Description: 0.75, ParamNames: 1, ParamDescriptions: 0.5, K1: 1.2, Prefix: 0.4, Exact: 0.3, Synonym: 0.5}
}

type field int

const (
	fieldName field = iota
	fieldSummary
	fieldDescription
	fieldParamNames
	fieldParamDescriptions
	numFields
)

// lengthNorm is BM25's b per field: a long description dilutes its terms,
// a name's length says little.
var lengthNorm = [numFields]float64{0.3, 0.5, 0.75, 0.5, 0.75}

// Index is a BM25F index over a fixed set of Docs. It is immutable once
// built; Search is safe for concurrent use.
type Index struct {
	n        int
	terms    map[string]int32 // term -> its postings in postings
	vocab    []string         // every term, sorted, for prefix matches
	postings [][]posting
	prefix   float32
	exact    float32
	synonym  float32
	bufs     sync.Pool // *searchBuf
}

// posting is one document's weight for a term: idf × saturated tf.
type posting struct {
	doc int32
	w   float32
}

// Hit is one search result: the Doc's position in what the Index was built
// from, and its score (higher is better; comparable within one search).
type Hit struct {
	Doc   int
	Score float64
}

// NewIndex builds an index over docs with w (zero fields take
// DefaultWeights').
func NewIndex(docs []Doc, w Weights) *Index {
	w = w.withDefaults()
	fw := [numFields]float64{w.Name, w.Summary, w.Description, w.ParamNames, w.ParamDescriptions}

	// A tool has a few dozen distinct terms: a slice searched in order
	// costs less than a map per tool.
	type termCount struct {
		term string
		n    [numFields]float64
	}
	type docTerms struct {
		tf     []termCount
		len    [numFields]float64
		demote bool
	}
	all := make([]docTerms, len(docs))
	var total [numFields]float64
	var buf []string
	memo := make(map[string][2]string)
	for i, d := range docs {
		dt := docTerms{demote: deprecated(d.Title + " " + d.Description)}
		add := func(f field, text string) {
			buf = terms(buf[:0], text, memo)
			for _, t := range buf {
				j := slices.IndexFunc(dt.tf, func(c termCount) bool { return c.term == t })
				if j < 0 {
					j = len(dt.tf)
					dt.tf = append(dt.tf, termCount{term: t})
				}
				dt.tf[j].n[f]++
			}
			dt.len[f] += float64(len(buf))
		}
		add(fieldName, d.Name)
		summary, rest := firstSentence(d.Description)
		add(fieldSummary, d.Title)
		add(fieldSummary, summary)
		add(fieldDescription, rest)
		for _, p := range d.Params {
			add(fieldParamNames, p.Name)
			add(fieldParamDescriptions, p.Description)
		}
		for f := range numFields {
			total[f] += dt.len[f]
		}
		all[i] = dt
	}
	var avg [numFields]float64
	for f := range numFields {
		avg[f] = max(total[f]/float64(max(len(docs), 1)), 1)
	}

	ix := &Index{n: len(docs), terms: make(map[string]int32), prefix: float32(w.Prefix), exact: float32(w.Exact), synonym: float32(w.Synonym)}
	for i, dt := range all {
		for _, c := range dt.tf {
			t := c.term
			tf := 0.0
			for f := range numFields {
				if c.n[f] > 0 {
					tf += fw[f] * c.n[f] / (1 - lengthNorm[f] + lengthNorm[f]*dt.len[f]/avg[f])
				}
			}
			id, ok := ix.terms[t]
			if !ok {
				id = int32(len(ix.postings))
				ix.terms[t] = id
				ix.postings = append(ix.postings, nil)
				ix.vocab = append(ix.vocab, t)
			}
			// Saturate now; idf follows once every document is in.
			sat := tf * (w.K1 + 1) / (w.K1 + tf)
			if dt.demote {
				sat *= deprecatedShare
			}
			ix.postings[id] = append(ix.postings[id], posting{doc: int32(i), w: float32(sat)})
		}
	}
	n := float64(len(docs))
	for _, ps := range ix.postings {
		df := float64(len(ps))
		idf := float32(math.Log(1 + (n-df+0.5)/(df+0.5)))
		for j := range ps {
			ps[j].w *= idf
		}
	}
	slices.Sort(ix.vocab)
	ix.bufs.New = func() any { return &searchBuf{scores: make([]float32, ix.n), best: make([]float32, ix.n)} }
	return ix
}

// deprecatedShare is what a deprecated tool's match is worth: it still
// comes up when asked for by name, but a current tool doing the same comes
// first.
const deprecatedShare = 0.5

// deprecated reports whether a tool's description says it is.
func deprecated(desc string) bool { return strings.Contains(strings.ToLower(desc), "deprecated") }

// firstSentence splits text after its first sentence: at the first ". ",
// ".\n" or a line break, or at its end.
func firstSentence(text string) (string, string) {
	for i := 0; i < len(text); i++ {
		switch {
		case text[i] == '\n':
			return text[:i], text[i+1:]
		case text[i] == '.' && i+1 < len(text) && (text[i+1] == ' ' || text[i+1] == '\n'):
			return text[:i+1], text[i+2:]
		}
	}
	return text, ""
}

func (w Weights) withDefaults() Weights {
	d := DefaultWeights()
	for _, p := range []struct{ v, def *float64 }{
		{&w.Name, &d.Name}, {&w.Summary, &d.Summary}, {&w.Description, &d.Description}, {&w.ParamNames, &d.ParamNames},
		{&w.ParamDescriptions, &d.ParamDescriptions}, {&w.K1, &d.K1}, {&w.Prefix, &d.Prefix}, {&w.Exact, &d.Exact},
		{&w.Synonym, &d.Synonym},
	} {
		if *p.v == 0 {
			*p.v = *p.def
		}
	}
	return w
}

// Len is the number of documents indexed.
func (ix *Index) Len() int { return ix.n }

// searchBuf is one search's scratch space, pooled: scores per document,
// the best weight of the current query word per document, and which
// documents each has touched.
type searchBuf struct {
	scores, best     []float32
	touched, current []int32
}

// Search returns up to limit documents that match query, best first (ties
// in index order). allow, if not nil, says which documents may be
// returned; the others are skipped, never counted against limit.
func (ix *Index) Search(query string, limit int, allow func(doc int) bool) []Hit {
	if limit <= 0 || ix.n == 0 {
		return nil
	}
	words := uniq(terms(nil, query, nil))
	if len(words) == 0 {
		return nil
	}
	b := ix.bufs.Get().(*searchBuf)
	defer ix.bufs.Put(b)
	for _, q := range words {
		if strings.HasPrefix(q, exactMark) {
			// The bonus for the word's very form: its own query word.
			if id, ok := ix.terms[q]; ok && ix.exact > 0 {
				ix.mark(b, ix.postings[id], ix.exact)
			}
			ix.flush(b)
			continue
		}
		// Each query word counts once per document: its own term's weight,
		// or a share of the best term it is a prefix of.
		if id, ok := ix.terms[q]; ok {
			ix.mark(b, ix.postings[id], 1)
		}
		if len(q) >= 3 && ix.prefix > 0 {
			for i, _ := slices.BinarySearch(ix.vocab, q); i < len(ix.vocab) && strings.HasPrefix(ix.vocab[i], q); i++ {
				if ix.vocab[i] != q {
					ix.mark(b, ix.postings[ix.terms[ix.vocab[i]]], ix.prefix)
				}
			}
		}
		for _, syn := range synonyms[q] {
			if id, ok := ix.terms[syn]; ok && ix.synonym > 0 {
				ix.mark(b, ix.postings[id], ix.synonym)
			}
		}
		ix.flush(b)
	}
	top := make([]Hit, 0, min(limit, len(b.touched)))
	for _, d := range b.touched {
		s := b.scores[d]
		b.scores[d] = 0
		if allow != nil && !allow(int(d)) {
			continue
		}
		top = insertTop(top, Hit{Doc: int(d), Score: float64(s)}, limit)
	}
	b.touched = b.touched[:0]
	return top
}

// flush adds the current query word's best weights to the scores.
func (ix *Index) flush(b *searchBuf) {
	for _, d := range b.current {
		if b.scores[d] == 0 {
			b.touched = append(b.touched, d)
		}
		b.scores[d] += b.best[d]
		b.best[d] = 0
	}
	b.current = b.current[:0]
}

// mark records, per document, the best weight the current query word has
// reached in ps.
func (ix *Index) mark(b *searchBuf, ps []posting, share float32) {
	for _, p := range ps {
		w := p.w * share
		if b.best[p.doc] == 0 {
			b.current = append(b.current, p.doc)
		}
		if w > b.best[p.doc] {
			b.best[p.doc] = w
		}
	}
}

// insertTop inserts h into top, kept sorted best first and at most limit
// long.
func insertTop(top []Hit, h Hit, limit int) []Hit {
	better := func(a, b Hit) bool { return a.Score > b.Score || (a.Score == b.Score && a.Doc < b.Doc) }
	if len(top) == limit && !better(h, top[len(top)-1]) {
		return top
	}
	i := len(top)
	for i > 0 && better(h, top[i-1]) {
		i--
	}
	if len(top) < limit {
		top = append(top, Hit{})
	}
	copy(top[i+1:], top[i:len(top)-1])
	top[i] = h
	return top
}

func uniq(ws []string) []string {
	out := ws[:0]
	for _, w := range ws {
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}
