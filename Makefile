.PHONY: help demo test lint fmt bench serve
help: ## list the developer commands
	@./dev help
demo: ## install and start the demo on the embedded SQLite default
	@./dev demo
test: ## install test dependencies and run the whole suite
	@./dev test
lint: ## ruff, mypy, import-linter
	@./dev lint
fmt: ## format and auto-fix
	@./dev fmt
bench: ## ingestion benchmark
	@./dev bench
serve: ## serve the API
	@./dev serve
