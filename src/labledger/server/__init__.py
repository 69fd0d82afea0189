"""The FastAPI server: ``create_app(settings)``; routes call the core service, never SQL."""
