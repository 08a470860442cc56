package main

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// source is one document excerpt handed to an Answerer, numbered from 1 in
// the order the search ranked it: the answer cites it as [N].
type source struct {
	N          int
	ID         int64
	Title      string
	UploadedAt time.Time
	// Text is what the answerer may quote: the document's text (cut at
	// maxSourceText) or, failing that, the search snippet.
	Text string
}

// maxSourceText bounds the text of one source given to an answerer, so that
// a large document does not crowd the others out of a model's context.
const maxSourceText = 6000

// Answerer turns a question and the excerpts the MCP server returned into an
// answer that cites them as [1], [2], ... (step 9 of the seed's flow).
// Implementations must say so when the sources do not answer the question.
// Errors are shown to the user through userError when they are one, as a
// generic message otherwise.
type Answerer interface {
	Answer(ctx context.Context, question string, sources []source) (string, error)
	// Name says which answerer this is, for the page ("extractive", the
	// model's name).
	Name() string
}

// nothingFound is the answer when no document matches at all.
const nothingFound = "I couldn't find anything about that in your documents."

// systemPrompt is the seed's instruction, with the citation format the page
// turns into links.
const systemPrompt = "You are a helpful assistant that answers questions based on the user's documents. " +
	"Always cite which document you got information from, with its number in square brackets, like [1]. " +
	"If you don't find relevant information in the provided context, say so clearly."

// userPrompt is the seed's context message: each excerpt with its title,
// upload date and number, then the question.
func userPrompt(question string, sources []source) string {
	var b strings.Builder
	b.WriteString("Context from user's documents:\n\n")
	for i, s := range sources {
		if i > 0 {
			b.WriteString("\n\n---\n\n")
		}
		b.WriteString("[" + strconv.Itoa(s.N) + "] Document: " + s.Title + "\nUploaded: " + uploaded(s.UploadedAt) + "\nContent: " + s.Text)
	}
	b.WriteString("\n\nUser question: " + question)
	return b.String()
}

func uploaded(t time.Time) string { return t.Format("Jan 2, 2006") }

// citation matches [N] in an answer.
var citation = regexp.MustCompile(`\[(\d{1,2})\]`)

// segment is a piece of an answer: plain text, or a citation of a source.
type segment struct {
	Text string
	Cite *source
}

// segments splits an answer into text and citations of sources, and
// returns the cited sources in order of first citation. A [N] that names no
// source stays text.
func segments(answer string, sources []source) (segs []segment, cited []source) {
	byN := map[int]*source{}
	for i := range sources {
		byN[sources[i].N] = &sources[i]
	}
	seen := map[int]bool{}
	last := 0
	for _, m := range citation.FindAllStringSubmatchIndex(answer, -1) {
		n, _ := strconv.Atoi(answer[m[2]:m[3]])
		s, ok := byN[n]
		if !ok {
			continue
		}
		if m[0] > last {
			segs = append(segs, segment{Text: answer[last:m[0]]})
		}
		segs = append(segs, segment{Cite: s})
		if !seen[n] {
			seen[n] = true
			cited = append(cited, *s)
		}
		last = m[1]
	}
	if last < len(answer) {
		segs = append(segs, segment{Text: answer[last:]})
	}
	return segs, cited
}
