"""HTTP pieces every surface (the MLflow API, the packages API, the CI JSON, the
pages) shares: the request pipeline, file responses, URL converters and URL
building, query arguments. Nothing here knows how a surface renders itself."""
