package aggregate

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Instructions is one backend's initialize instructions.
type Instructions struct {
	Backend string
	Text    string
}

// MergeInstructions joins the backends' instructions into one text, each
// under a heading that names its backend, in the order given:
// "## files\n<text>\n\n## browser\n<text>". Backends with no (or only
// blank) instructions are left out; none at all gives "".
func MergeInstructions(in []Instructions) string {
	var b strings.Builder
	for _, i := range in {
		text := strings.TrimSpace(i.Text)
		if text == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString("## ")
		b.WriteString(i.Backend)
		b.WriteByte('\n')
		b.WriteString(text)
	}
	return b.String()
}

// MergeCapability merges one capability object (such as "tasks") as the
// backends declared it: a member any backend declares is declared, and
// objects are merged member by member, so the result supports what at
// least one backend supports. Absent, null and non-object declarations
// are ignored; if no backend declares an object, the result is nil.
func MergeCapability(caps []json.RawMessage) json.RawMessage {
	var merged map[string]any
	for _, raw := range caps {
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || raw[0] != '{' {
			continue
		}
		var obj map[string]any
		if json.Unmarshal(raw, &obj) != nil {
			continue
		}
		if merged == nil {
			merged = map[string]any{}
		}
		mergeObject(merged, obj)
	}
	if merged == nil {
		return nil
	}
	out, err := json.Marshal(merged)
	if err != nil {
		return nil
	}
	return out
}

// mergeObject adds src's members to dst; where both hold an object, the
// objects are merged, and otherwise dst keeps what it had.
func mergeObject(dst, src map[string]any) {
	for k, v := range src {
		cur, ok := dst[k]
		if !ok {
			dst[k] = v
			continue
		}
		a, aok := cur.(map[string]any)
		b, bok := v.(map[string]any)
		if aok && bok {
			mergeObject(a, b)
		}
	}
}
