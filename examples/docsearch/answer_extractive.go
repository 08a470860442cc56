package main

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// extractive is the Answerer used when no model is configured: it answers
// with the sentences of the sources that share the most words with the
// question, each cited, so that the app works offline on first run. It
// quotes; it does not reason: a question whose words appear in no sentence
// gets "nothing found", even if a model could have inferred an answer.
type extractive struct{}

func (extractive) Name() string { return "extractive (no model configured)" }

// maxQuoted is how many sentences an extractive answer quotes at most.
const maxQuoted = 3

type scored struct {
	src   int // index into sources
	pos   int // sentence position in its source
	score int
	text  string
}

func (extractive) Answer(_ context.Context, question string, sources []source) (string, error) {
	want := map[string]bool{}
	for _, t := range searchTerms(question) {
		want[stem(t)] = true
	}
	var all []scored
	for i, s := range sources {
		for j, sentence := range sentences(s.Text) {
			if n := overlap(sentence, want); n > 0 {
				all = append(all, scored{src: i, pos: j, score: n, text: sentence})
			}
		}
	}
	if len(all) == 0 {
		return nothingFound, nil
	}
	// Best first; among equals, the better-ranked source, then document order.
	sort.SliceStable(all, func(a, b int) bool {
		if all[a].score != all[b].score {
			return all[a].score > all[b].score
		}
		if all[a].src != all[b].src {
			return all[a].src < all[b].src
		}
		return all[a].pos < all[b].pos
	})
	// Keep the best sentences and those more than half as good.
	best := all[0].score
	var picked []scored
	for _, s := range all {
		if len(picked) == maxQuoted || 2*s.score <= best && s.score < best {
			break
		}
		picked = append(picked, s)
	}
	var b strings.Builder
	for i, p := range picked {
		src := sources[p.src]
		switch {
		case i == 0:
			b.WriteString("According to your " + src.Title + " (uploaded " + uploaded(src.UploadedAt) + "): ")
		case p.src != picked[i-1].src:
			b.WriteString(" Your " + src.Title + " (uploaded " + uploaded(src.UploadedAt) + ") also says: ")
		default:
			b.WriteString(" ")
		}
		b.WriteString(strings.TrimRight(p.text, " ") + " [" + strconv.Itoa(src.N) + "]")
	}
	return b.String(), nil
}

// overlap counts the distinct wanted stems in a sentence.
func overlap(sentence string, want map[string]bool) int {
	found := map[string]bool{}
	for _, w := range searchTerms(sentence) {
		if s := stem(w); want[s] {
			found[s] = true
		}
	}
	return len(found)
}

// stem strips the common English endings, so "numbers" finds "number" and
// "revenues" finds "revenue". It is deliberately crude: both sides of a
// comparison go through it.
func stem(w string) string {
	for _, suffix := range []string{"ies", "es", "s", "ing", "ed", "ly"} {
		if len(w) > len(suffix)+2 && strings.HasSuffix(w, suffix) {
			return strings.TrimSuffix(w, suffix)
		}
	}
	return w
}

// sentences splits text into sentences: at ., ! or ? followed by a space
// and at line breaks, with Markdown list and emphasis markers dropped.
// Markdown headings are left out: they name a topic, they answer nothing.
func sentences(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimSpace(strings.TrimLeft(line, ">-*+ "))
		line = strings.NewReplacer("**", "", "__", "", "`", "").Replace(line)
		start := 0
		for i, r := range line {
			if (r == '.' || r == '!' || r == '?') && i+1 < len(line) && line[i+1] == ' ' && !abbreviation(line[start:i]) {
				if s := strings.TrimSpace(line[start : i+1]); hasLetter(s) {
					out = append(out, s)
				}
				start = i + 1
			}
		}
		if s := strings.TrimSpace(line[start:]); hasLetter(s) {
			out = append(out, s)
		}
	}
	return out
}

// abbreviation reports whether text ends with a short abbreviation ("e.g",
// "Dr", "vs"), whose dot ends no sentence.
func abbreviation(text string) bool {
	i := strings.LastIndexByte(text, ' ')
	last := strings.ToLower(text[i+1:])
	switch last {
	case "e.g", "i.e", "dr", "mr", "mrs", "ms", "vs", "etc", "approx", "inc", "no":
		return true
	}
	return false
}

func hasLetter(s string) bool {
	return strings.IndexFunc(s, unicode.IsLetter) >= 0
}
