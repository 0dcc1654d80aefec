"""The credit-risk data and the toy model trained on it, and what makes a drill's version worse."""
