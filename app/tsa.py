"""Trusted time: an RFC 3161 timestamp token for each checkpoint, from a time-stamping authority
(`tsa_url`), so the time a checkpoint claims is vouched for by someone other than this machine's
clock. The TSA signs the SHA-256 of the checkpoint's canonical message (evidence.checkpoint_message);
`seized verify` checks that signature against the TSA's CA chain (`tsa_certificate`).

Requests, responses and their verification are rfc3161-client's (Trail of Bits; it is what
sigstore-python uses): it builds the request (hashing the message itself), parses the DER response (fetched with the standard library's urllib)
and checks the CMS signature, the certificate chain at the token's time, the critical
timeStamping EKU of the signer and the message imprint. A token is kept as the whole DER
TimeStampResp, base64 in the database and the witness line."""

from __future__ import annotations

import base64
import functools
import hashlib
import urllib.request
from pathlib import Path

TIMEOUT_S = 5.0
MAX_RESPONSE = 64 * 1024  # bytes: a token with its certificates is a few KiB
SHA256_OID = "2.16.840.1.101.3.4.2.1"


class TsaError(Exception):
    """The TSA could not be reached, or did not grant a usable token."""


def request_token(url: str, message: bytes, timeout_s: float = TIMEOUT_S) -> bytes:
    """Ask the TSA at `url` to timestamp SHA-256(`message`); the DER TimeStampResp it granted.
    Raises TsaError if it is unreachable, refuses, or answers for another message or nonce."""
    from rfc3161_client import HashAlgorithm, PKIStatus, TimestampRequestBuilder, decode_timestamp_response

    request = TimestampRequestBuilder().data(message).hash_algorithm(HashAlgorithm.SHA256).cert_request(
        cert_request=True).build()
    query = urllib.request.Request(url, data=request.as_bytes(), method="POST",
                                   headers={"Content-Type": "application/timestamp-query"})
    try:
        with urllib.request.urlopen(query, timeout=timeout_s) as answer:  # raises on a status >= 400
            content = answer.read(MAX_RESPONSE + 1)
    except (OSError, ValueError) as error:  # URLError, HTTPError, timeouts, a URL that is none
        raise TsaError(f"the TSA {url} did not answer: {error}") from None
    if len(content) > MAX_RESPONSE:
        raise TsaError(f"the TSA {url} answered with more than {MAX_RESPONSE} bytes")
    try:
        response = decode_timestamp_response(content)
    except ValueError as error:
        raise TsaError(f"the TSA {url} answered with no timestamp response: {error}") from None
    if response.status != PKIStatus.GRANTED:  # what verification accepts (not GRANTED_WITH_MODS)
        raise TsaError(f"the TSA {url} refused: status {response.status} {' '.join(response.status_string)}")
    info = response.tst_info
    if info.message_imprint.message != hashlib.sha256(message).digest() or info.nonce != request.nonce:
        raise TsaError(f"the TSA {url} answered for another request")
    return content


def encode(token: bytes) -> str:
    return base64.b64encode(token).decode("ascii")


def decode(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def load_certificates(path: Path) -> bytes:
    """A `tsa_certificate` file's PEM, read once (a missing or empty file is an error at once)."""
    pem = Path(path).read_bytes()
    _verifier(pem)  # a file without certificates, or without a root, is refused here
    return pem


def _certificates(pem: bytes) -> list:
    from cryptography import x509

    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError as error:
        raise ValueError(f"no PEM certificates: {error}") from None
    return certificates


@functools.lru_cache(maxsize=4)
def _verifier(certificate_pem: bytes):
    """A verifier trusting the self-signed certificates of the PEM as roots, the others as
    intermediates, and pinning the TSA's own certificate (one with the timeStamping EKU) if given."""
    from cryptography import x509
    from rfc3161_client import VerifierBuilder

    builder = VerifierBuilder()
    roots = 0
    for certificate in _certificates(certificate_pem):
        try:
            usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            usage = ()
        if certificate.issuer == certificate.subject:
            builder, roots = builder.add_root_certificate(certificate), roots + 1
        elif x509.ExtendedKeyUsageOID.TIME_STAMPING in usage:
            builder = builder.tsa_certificate(certificate)
        else:
            builder = builder.add_intermediate_certificate(certificate)
    if not roots:
        raise ValueError("the TSA certificate file has no root (self-signed) certificate: give the TSA's CA chain")
    return builder.build()


def check_token(token: bytes, message: bytes, certificate_pem: bytes) -> tuple[bool, str | None, str | None]:
    """Whether `token` (a DER TimeStampResp) is the TSA's signature over SHA-256(`message`), made by a
    certificate that chains to a root of `certificate_pem`: (ok, the time it vouches for, problem)."""
    from rfc3161_client import VerificationError, decode_timestamp_response

    from .record import utc_text

    try:
        response = decode_timestamp_response(token)
        info = response.tst_info
        time = utc_text(info.gen_time)
        algorithm = info.message_imprint.hash_algorithm.dotted_string
    except ValueError as error:
        return False, None, f"not a timestamp response: {error}"
    if algorithm != SHA256_OID:
        return False, time, "its message imprint is not SHA-256"
    try:
        verifier = _verifier(certificate_pem)
    except ValueError as error:
        return False, time, str(error)
    try:
        verifier.verify(response, hashlib.sha256(message).digest())
    except (VerificationError, ValueError) as error:
        problem = str(error)
        if "Mismatch between messages" in problem:
            problem = "it timestamps another message than this checkpoint's"
        return False, time, problem
    return True, time, None
