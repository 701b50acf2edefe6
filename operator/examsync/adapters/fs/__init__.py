"""FS (Felles studentsystem), DigEks `eksamen` service: the client and its sandbox simulator."""
