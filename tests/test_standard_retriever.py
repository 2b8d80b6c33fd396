"""LangChain's standard retriever suite (langchain-tests) against ``NotesRetriever`` over a
real small index: the real embedding model, embedded Chroma, BM25 and the line vectors."""

from __future__ import annotations

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests

from conftest import MODEL_CACHE
from rag.config import Settings
from rag.index import NoteIndex
from rag.retrieval import HybridSearch, NotesRetriever

# Five files on different services, so that any k up to 5 has k distinct passages to return.
NOTES = {
    "lambda.md": "# Lambda\n\n- A Lambda function runs for at most 15 minutes.\n"
                 "- Memory goes from 128 MB to 10 GB.\n",
    "s3.md": "# S3\n\n- S3 Glacier Deep Archive is the cheapest storage class.\n"
             "- Objects can be up to 5 TB.\n",
    "sqs.md": "# SQS\n\n- SQS keeps messages for up to 14 days.\n"
              "- A message is at most 256 KB.\n",
    "iam.md": "# IAM\n\n- An IAM user can have two access keys.\n"
              "- Policies are JSON documents.\n",
    "kinesis.md": "# Kinesis\n\n- Kinesis Data Streams keep records for 24 hours by default.\n"
                  "- A shard takes 1 MB per second of writes.\n",
}


@pytest.fixture(scope="module")
def notes_search(tmp_path_factory) -> HybridSearch:
    root = tmp_path_factory.mktemp("standard-retriever")
    notes = root / "notes"
    notes.mkdir()
    for name, text in NOTES.items():
        (notes / name).write_text(text, encoding="utf-8")
    settings = Settings(home=root / "home",
                        storage={"notes_dir": notes, "model_cache_dir": MODEL_CACHE},
                        answer={"backend": "extractive"})
    index = NoteIndex(settings)
    index.ingest()
    return HybridSearch(settings, index)


class TestNotesRetriever(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _search(self, notes_search: HybridSearch) -> None:
        self.search = notes_search

    @property
    def retriever_constructor(self) -> type[NotesRetriever]:
        return NotesRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"search": self.search}

    @property
    def retriever_query_example(self) -> str:
        return "How long can a Lambda function run?"
