"""Settings: the TOML config file, overridden by `SEIZED_*` environment variables,
overridden by command-line options (pydantic-settings does the layering)."""

from __future__ import annotations

import ipaddress
import socket
import unicodedata
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, BaseSettings, SettingsConfigDict, TomlConfigSettingsSource

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent


def bundled(name: str) -> Path:
    """Where the notice's templates or static files are: inside the package when installed from a
    wheel (app/templates, app/static); in a checkout (and its editable install), the top-level folder."""
    packaged = PACKAGE_DIR / name
    return packaged if packaged.is_dir() else PROJECT_DIR / name

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class NoticeSettings(BaseModel):
    """What the notice says; the defaults for unknown hosts and for domains that leave a field out."""

    agency: str = "The competent authority"
    case_ref: str = ""
    legal_basis: str = ""
    language: str = "en"
    status: Annotated[int, Field(ge=200, le=599)] = 451
    # Named in the `Link: <...>; rel="blocked-by"` header (RFC 7725).
    blocked_by: str = ""

    @field_validator("agency", "case_ref", "legal_basis", "language", "blocked_by")
    @classmethod
    def _no_controls(cls, text: str) -> str:
        return no_control_characters(text)


class DomainSeed(BaseModel):
    """A seized domain as written in the config file; every notice field falls back to [notice]."""

    name: str
    agency: str | None = None
    case_ref: str | None = None
    legal_basis: str | None = None
    language: str | None = None
    status: Annotated[int, Field(ge=200, le=599)] | None = None
    blocked_by: str | None = None
    notes: str = ""

    @field_validator("name")
    @classmethod
    def _normalise(cls, name: str) -> str:
        return normalise_domain(name)

    @field_validator("agency", "case_ref", "legal_basis", "language", "blocked_by")
    @classmethod
    def _no_controls(cls, text: str | None) -> str | None:
        return None if text is None else no_control_characters(text)


def no_control_characters(text: str) -> str:
    """Notice text from the config file: a control character other than tab or line break (NUL,
    ESC, DEL, C1) is refused, as it has no place on a page (domains.clean_text drops them from text
    set any other way)."""
    bad = next((char for char in text if char not in "\t\n\r" and unicodedata.category(char) == "Cc"), None)
    if bad is not None:
        raise ValueError(f"control character U+{ord(bad):04X} not allowed in notice text")
    return text


def canonical_domain(name: str) -> str:
    """A domain name as seized stores it and looks it up: 'WWW.Example.TV.' -> 'www.example.tv'
    (no surrounding space, lower case, no trailing dot). Never raises: a lookup of a name that is
    no domain name finds nothing. What is stored goes through `normalise_domain`."""
    return name.strip().lower().rstrip(".")


def normalise_domain(name: str) -> str:
    """`canonical_domain`, refusing what is no domain name (empty, a port, a URL, a user, controls)."""
    name = canonical_domain(name)
    if not name or any(ord(c) < 33 or c in "/:@[]\x7f" for c in name):
        raise ValueError(f"not a domain name: {name!r}")
    return name


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEIZED_", env_nested_delimiter="__", extra="forbid")

    # Stored with every hit and naming its chain: one live deployment per id (a lease in the
    # database refuses a second). Default: this machine's host name.
    node: str = Field(default_factory=socket.gethostname, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    # Every piece of state lives under here unless set on its own: the database (seized.db), the
    # journal (journal/), rendered notice videos (video/) and the run files (run/).
    data_dir: Path = Path("data")
    db: str | None = None  # default: sqlite:///<data_dir>/seized.db
    # The public listener's addresses (IPTV panels use 80, 8080, 8000, 25461, 2095, 8880...): a list, or
    # one address, or several separated by commas (SEIZED_PUBLIC). `[::]:PORT` takes IPv4 and IPv6 alike.
    public: Annotated[list[str], NoDecode] = ["[::]:8080"]
    # TLS listeners (HTTPS visitors, mostly on 443): the same notice over TLS; every connection a hit,
    # a failed handshake too (tls_listener.py). Certificates from tls_cert_dir (<name>.crt and
    # <name>.key, `_.example.tv` for a wildcard), else self-signed for the name the client asked for.
    tls: Annotated[list[str], NoDecode] = []
    tls_cert_dir: Path | None = None
    admin: str = "127.0.0.1:8081"
    # Public listener processes sharing the port; the ingest process and the management API run beside them.
    workers: Annotated[int, Field(ge=1, le=64)] = 1

    # Peers whose forwarding header (the one named in forwarded_header) and client-port header are believed.
    trusted_proxies: list[Network] = []
    client_port_header: str = "x-real-port"
    # The one header a trusted proxy's client address is taken from (and, for x-forwarded-for, the
    # scheme from X-Forwarded-Proto; for forwarded, from its nearest element's proto=): any other is
    # stored with the hit and never believed.
    forwarded_header: Literal["x-forwarded-for", "forwarded", "x-real-ip"] = "x-forwarded-for"
    # Request bodies: at most this many bytes are read into the hash; the rest is only counted.
    body_cap: int = 64 * 1024
    # A request head (request line and headers) larger than this is answered 431 and the connection
    # closed; the hit is logged with the head truncated to this size and the reason in `error`.
    max_header_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024
    # A request head not complete this many seconds after its first byte is answered 408 and the
    # connection closed (a connection that sends nothing is closed sooner); logged with what arrived.
    header_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    # Open connections per worker before the slowest incomplete ones are closed to make room (logged,
    # 408). Default: the open-file limit (raised to its hard limit at start) less 256.
    max_connections: Annotated[int, Field(ge=16)] | None = None

    # The journal: every hit is written to it before its response is sent (it then survives any
    # crash of seized); it is also fdatasynced this often, bounding what a power loss can take
    # (0: fdatasync before every response; see bench/RESULTS.md for what each setting costs).
    fsync_interval_ms: Annotated[int, Field(ge=0)] = 50
    journal_segment_mb: Annotated[int, Field(ge=1)] = 32
    # Hits held in memory while the journal cannot be written (disk full); more are counted as lost.
    journal_held_limit: Annotated[int, Field(ge=0)] = 10_000
    # The ingest process moves journal records into the database this many at a time, at this
    # CPU priority (nice) below the listeners, so their latency does not suffer from its bursts.
    batch_size: Annotated[int, Field(ge=1)] = 5_000
    ingest_nice: Annotated[int, Field(ge=0, le=19)] = 10
    # SIGTERM: listeners finish what is in flight, the ingest process drains; all within this.
    stop_timeout_s: Annotated[float, Field(gt=0)] = 10.0

    # Secret for password_hmac = HMAC-SHA256(match_key, password); unset: no password trace is kept.
    match_key: SecretStr | None = None
    # Notice videos for IPTV players are rendered once per domain and language and kept here.
    video_dir: Path | None = None  # default: <data_dir>/video
    prerender_videos: bool = True  # at start, in the background, for each domain's default language
    # The visitor's IP in the video (app/notice/visit_video.py): HLS players get a forced WebVTT track
    # written per request; .ts/.mp4 players a per-IP rendering (~0.15 s of one core, bench/tv_visit.py),
    # kept per worker in an LRU cache of at most visit_video_cache_mb (a 12 s .ts is ~180 kB), at most
    # visit_video_renders at once: beyond that a new IP gets the shared video. False: the shared video only.
    visit_video: bool = True
    visit_video_cache_mb: Annotated[int, Field(ge=0, le=4096)] = 32
    visit_video_renders: Annotated[int, Field(ge=0, le=64)] = 2

    # MaxMind-format databases (.mmdb): City or Country, and ASN. Unset or unreadable: fields stay empty.
    geoip_city_db: Path | None = None
    geoip_asn_db: Path | None = None

    # Hits older than this many days are purged (daily, and by `seized purge`); unset: kept for ever.
    retention_days: Annotated[int, Field(ge=1)] | None = None

    # Tamper evidence: a checkpoint of each node's chain head every N hits or S seconds (so what no
    # checkpoint covers yet is at most a minute of hits), signed with this Ed25519 private key (PEM;
    # make one with `seized evidence keygen`) when given.
    checkpoint_every_hits: Annotated[int, Field(ge=1)] = 10_000
    checkpoint_every_s: Annotated[float, Field(gt=0)] = 60.0
    # Every checkpoint is also appended to this file (default <data_dir>/witness/checkpoints.jsonl;
    # ship it off the machine) and POSTed to each of these URLs, as it is made.
    witness_file: Path | None = None
    witness_urls: list[str] = []
    signing_key_file: Path | None = None
    # Checkpoint signers verify accepts (64 hex digits or a PEM file each); with any, unsigned fails.
    trusted_public_keys: list[str] = []
    # Trusted time: each checkpoint also gets an RFC 3161 timestamp token from this TSA (a TSA that
    # fails is logged and the checkpoint kept without one); verify checks the tokens against this
    # PEM file: the TSA's CA chain down to its root (the TSA's own certificate may be added, pinning it).
    tsa_url: str | None = None
    tsa_certificate: Path | None = None

    # The first admin token (made at the first start, when none exists) is written to this file,
    # mode 0600, never to the log. Default: <data_dir>/initial-admin-token.
    admin_token_file: Path | None = None

    # Management API: this many failed authentications from one address within the window -> 429.
    auth_failure_limit: int = 10
    auth_failure_window_s: float = 60.0

    # The log on stderr: `text` (one line per event, for people) or `json` (one JSON object per line:
    # time, level, process, logger, message, exception; for log shippers).
    log_format: Literal["text", "json"] = "text"

    # The notice's HTML templates and its stylesheet and images; default: the copies seized ships with.
    templates_dir: Path = Field(default_factory=lambda: bundled("templates"))
    static_dir: Path = Field(default_factory=lambda: bundled("static"))

    notice: NoticeSettings = NoticeSettings()
    domains: list[DomainSeed] = []

    @field_validator("public", "tls", mode="before")
    @classmethod
    def _addresses(cls, value, info):
        addresses = [a.strip() for a in value.split(",") if a.strip()] if isinstance(value, str) else list(value)
        if info.field_name == "public" and not addresses:
            raise ValueError("public: at least one HOST:PORT")
        for address in addresses:
            split_address(address)  # a malformed one is refused here, not when binding
        return addresses

    @field_validator("client_port_header")
    @classmethod
    def _lower(cls, name: str) -> str:
        return name.lower()

    @field_validator("forwarded_header", mode="before")
    @classmethod
    def _lower_forwarded(cls, name):
        return name.strip().lower() if isinstance(name, str) else name

    @model_validator(mode="after")
    def _under_data_dir(self) -> "Settings":
        if self.db is None:
            self.db = f"sqlite:///{self.data_dir / 'seized.db'}"
        if self.video_dir is None:
            self.video_dir = self.data_dir / "video"
        if self.witness_file is None:
            self.witness_file = self.data_dir / "witness" / "checkpoints.jsonl"
        if self.admin_token_file is None:
            self.admin_token_file = self.data_dir / "initial-admin-token"
        return self

    @property
    def journal_dir(self) -> Path:
        return self.data_dir / "journal"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"


def load_settings(config_file: Path | None = None, **overrides) -> Settings:
    """Settings from `config_file` (if given), then `SEIZED_*` env vars, then `overrides` (None = unset)."""

    class FromFile(Settings):
        @classmethod
        def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):
            sources = [init_settings, env_settings]
            if config_file is not None:
                if not Path(config_file).is_file():
                    raise FileNotFoundError(f"config file not found: {config_file}")
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
            return tuple(sources)

    return FromFile(**{k: v for k, v in overrides.items() if v is not None})


def split_address(address: str) -> tuple[str, int]:
    """'0.0.0.0:8080' or '[::1]:8080' -> (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT (a port 0-65535), got {address!r}")
    return host.strip("[]") or "0.0.0.0", int(port)
