package mcpauth

// ForgeKeyForTest builds a well-formed key (valid checksum) from chosen parts.
func ForgeKeyForTest(prefix, id, secret string) string {
	head := prefix + "_" + id + secret
	cs := encodeChecksum(checksum(head))
	return head + string(cs[:])
}
