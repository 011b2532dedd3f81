"""What a member sends, checked before anything is kept: the certificate as notary checks it
(`certificates`), private key material refused however it is wrapped (`private_keys`), the
certificate bound to the person (`identity`), the proof that they hold its key (`possession`),
and uploads kept in memory under a cap (`uploads`)."""
