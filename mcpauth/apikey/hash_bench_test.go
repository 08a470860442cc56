package apikey

import "testing"

// BenchmarkHashCompare is one hash of key material plus the constant-time
// compare, with a pepper (HMAC-SHA256) and without (SHA-256).
func BenchmarkHashCompare(b *testing.B) {
	material := "0123456789ABabcdefghijklmnopqrstuvwx"
	for _, tc := range []struct {
		name    string
		peppers []Pepper
	}{
		{"hmac-sha256", []Pepper{{Version: 1, Secret: []byte("0123456789abcdef0123456789abcdef")}}},
		{"sha256", nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h, err := NewHasher(tc.peppers)
			if err != nil {
				b.Fatal(err)
			}
			sum, v := h.Hash(material)
			b.ReportAllocs()
			for b.Loop() {
				if ok, _ := h.Verify(v, material, sum[:]); !ok {
					b.Fatal("mismatch")
				}
			}
		})
	}
}
