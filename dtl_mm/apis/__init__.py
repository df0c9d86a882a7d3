"""What tools and users call: inference, multi-task serving, runner set-up."""
