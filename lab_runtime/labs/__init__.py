"""Labs as data and the checks that judge their steps; the incident note, the diagnoses, the solutions' helpers."""
