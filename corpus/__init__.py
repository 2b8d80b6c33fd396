"""The sample notes, shipped in the wheel as the data package ``rag.corpus`` (see
pyproject.toml); ``rag.config.bundled_corpus`` finds them. Only the notes are read from here."""
