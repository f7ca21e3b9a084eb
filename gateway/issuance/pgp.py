"""OpenPGP encryption of a card file to a card bureau's public key, through the gpg program.

OpenPGP is what card bureaus take for files of numbers and PINs, and gpg is the implementation
they run; the operator imports the bureau's key into their keyring once (`gpg --import`). The
plaintext goes to gpg through a pipe and never touches the disk (docs/artwork.md, "Protection").
"""

from __future__ import annotations

import shutil
import subprocess

GPG_SECONDS = 300  # 100,000 cards (about 20 MB) take a few seconds


class EncryptError(Exception):
    """gpg is missing or refused (an unknown recipient, an untrusted or expired key): the
    message is gpg's last line, which names the key, never the data."""


def encrypt(data: bytes, recipient: str) -> bytes:
    """`data` encrypted to `recipient` (a key id, fingerprint or e-mail address in the keyring
    of GNUPGHOME, or ~/.gnupg), as a binary OpenPGP message. `--trust-model always`: choosing
    the recipient on the command line is the operator's trust decision; gpg's web of trust is
    not asked."""
    gpg = shutil.which("gpg")
    if gpg is None:
        raise EncryptError("gpg is not installed (Debian: apt-get install gnupg)")
    try:
        done = subprocess.run(
            [gpg, "--batch", "--yes", "--quiet", "--trust-model", "always", "--encrypt",
             "--recipient", recipient, "--output", "-"],
            input=data, capture_output=True, timeout=GPG_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise EncryptError(f"gpg took more than {GPG_SECONDS} s") from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise EncryptError(f"gpg could not encrypt to {recipient!r}: "
                           f"{lines[-1] if lines else f'exit status {done.returncode}'}")
    return done.stdout
