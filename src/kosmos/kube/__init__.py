"""The only code that talks to apiservers: clients, informers, workqueues, controllers."""
