"""What each kopf handler does; ``examsync.kube.main`` only registers them."""
