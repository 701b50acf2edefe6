"""The operator against the Kubernetes API emulator, and the pure rules of its layer (examsync.kube)."""
