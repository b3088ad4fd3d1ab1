"""Wire-protocol conformance suite for 10-byte-header chat servers."""
