// Package fast holds the data of fib's output fast path: the slot a
// table's trie holds for each prefix, the precomputed answers slots name
// (Shapes), and the tables of a chain, each a trie with its direct table
// (package direct), searched in order (Find4, Find6).
//
// It knows nothing of the kernel's semantics: fib decides which routes
// get a precomputed answer, what that answer is and what it means, and
// fib's general lookup is the documented behaviour the fast path must
// reproduce. The package's tests compare its chain search with the tries
// searched one by one on random tables; fib's tests compare its fast path
// with its general lookup, answer and trace, on random models.
package fast
