package fast

// Slot is what a table's trie holds for one prefix: the index of the
// prefix's only route, or with Group of its first route of several; and,
// when fib precomputed the answer of the prefix's (first) route, that
// answer's id in Shapes. A slot is 8 bytes, stored by value in the trie,
// as small as a pointer: at a million routes, one more random memory
// access per lookup costs as much as the trie walk itself.
type Slot struct {
	// Idx is the index of the route in the model's routes.
	Idx uint32
	// tag holds groupBit and the answer's id, 0 for none.
	tag uint32
}

// groupBit marks a slot of a prefix with several routes.
const groupBit uint32 = 1 << 31

// MaxShapes is the most answers Shapes holds: ids must leave groupBit
// free.
const MaxShapes = int(groupBit - 1)

// NewSlot returns the slot of route idx with the answer id (0 for none).
func NewSlot(idx, id uint32) Slot { return Slot{Idx: idx, tag: id} }

// Group reports whether the slot's prefix has several routes.
func (s Slot) Group() bool { return s.tag&groupBit != 0 }

// AsGroup returns the slot marked as that of a prefix with several
// routes.
func (s Slot) AsGroup() Slot { s.tag |= groupBit; return s }

// Shape returns the id of the slot's precomputed answer, 0 if none.
func (s Slot) Shape() uint32 { return s.tag &^ groupBit }

// Shapes interns precomputed answers: routes share few of them (a table
// of a million routes has a handful of devices and gateways), so a slot
// names one by a small id.
type Shapes[S comparable] struct {
	list []S
	ids  map[S]uint32
	// last is the id found last: routes next to each other often share
	// it, and comparing is cheaper than hashing.
	last uint32
}

// ID returns the id of s, adding it; 0 when Shapes is full.
func (sh *Shapes[S]) ID(s S) uint32 {
	if sh.last != 0 && sh.list[sh.last-1] == s {
		return sh.last
	}
	id, ok := sh.ids[s]
	if !ok {
		if len(sh.list) >= MaxShapes {
			return 0
		}
		if sh.ids == nil {
			sh.ids = make(map[S]uint32)
		}
		sh.list = append(sh.list, s)
		id = uint32(len(sh.list))
		sh.ids[s] = id
	}
	sh.last = id
	return id
}

// Seal drops what adding needs; ID must not be called after it.
func (sh *Shapes[S]) Seal() { sh.ids = nil }

// At returns the answer of id, which must be one ID returned.
func (sh *Shapes[S]) At(id uint32) *S { return &sh.list[id-1] }

// Len returns the number of answers.
func (sh *Shapes[S]) Len() int { return len(sh.list) }
