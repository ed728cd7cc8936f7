"""esl_handlers."""
