"""The shadow: judged from figures per window (pure), and measured live from the prediction log."""
