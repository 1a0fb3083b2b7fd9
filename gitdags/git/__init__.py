"""Git: the source mirrors gitdags fetches, the diffs between commits, the files at a commit,
commit signatures. The only package that runs git. Imports the vocabulary (model, errors,
config) only."""
