// Package direct holds the accelerators of fib's output fast path:
// direct-indexed copies of a big routing table's trie (DIR-24-8 style, one
// for IPv4 and one for a region of the IPv6 space). They are not the
// documented behaviour: each answers exactly what the bart trie it was
// built from answers (Table.Lookup, the longest prefix covering an
// address), or says that the trie must answer. The package's tests compare
// them with the trie on random tables, as bart checks its node types
// against a golden table; fib's tests compare its fast path, which reads
// them, with the general lookup on random models.
package direct
