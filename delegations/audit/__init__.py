"""The hash-chained audit log: writing and verifying the chain (`chain`), and reading it for
people: who sees which events, how they are shown and exported (`log`)."""
