"""The repository as a whole: the import graph, module names, lock files, the wheel, the docs' map."""
