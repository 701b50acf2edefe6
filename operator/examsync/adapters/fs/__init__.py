"""FS (Felles studentsystem), DigEks `eksamen` service: the client."""
