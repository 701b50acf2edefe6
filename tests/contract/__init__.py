"""examsync and its simulator against WISEflow's published OpenAPI description."""
