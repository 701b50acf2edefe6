"""WISEflow (UNIwise): the target of fs-wiseflow and praktikportalen-wiseflow."""
