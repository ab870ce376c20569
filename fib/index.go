package fib

type index struct{}
