from gitdags.cli import main

main()
