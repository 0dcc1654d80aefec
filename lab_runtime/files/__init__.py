"""Files the sandbox's processes share: written whole and swapped in, SQLite opened alike, YAML read into models."""
