"""The world: dataset registry, image datasets, archive parsers, the OOD sets, the toy world, downloads.
Never imports vs2mini.method, vs2mini.tables or vs2mini.teach."""
