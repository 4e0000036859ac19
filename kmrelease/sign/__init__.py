"""Release signatures (SPEC §13): the signed statement, its two encodings, signers and trusted keys.

- :mod:`.statement`: what is signed (``km-release-<v>\\n`` + the bytes of ``SHA256SUMS``).
- :mod:`.sshsig`: the armored SSH signature (``ssh-keygen -Y verify``).
- :mod:`.signers`: the signer interface, the key file backend and the development key.
- :mod:`.keyvault`: the Azure Key Vault backend (the key never leaves the vault).
- :mod:`.keys`: the trusted public keys of ``build/keys/`` and what is derived from them.
- :mod:`.settings`: which signer a release uses (``[signing]``, ``KM_SIGNING_KEY``).
- :mod:`.stage`: the signing stage writing ``SHA256SUMS.sig`` and ``SHA256SUMS.p256``.
"""
