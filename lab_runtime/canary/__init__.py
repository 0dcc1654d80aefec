"""The canary: judged from figures per variant (pure), and analysed live from the prediction log."""
