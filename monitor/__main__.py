from monitor.cli.main import main

if __name__ == "__main__":  # spawned child processes (the model process) import this module too
    main()
