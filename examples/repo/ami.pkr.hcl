# The example's machine image: Packer's amazon-ebs builder. kiln dev runs it
# against a local moto_server, so it starts no instance to connect to
# (communicator "none") and provisions on the worker. For real AWS, drop
# custom_endpoint_ec2 and use a communicator.

# The EC2 endpoint; kiln dev passes its moto_server's.
variable "endpoint" {
  type = string
}

# Set by kiln through PKR_VAR_kiln_*.
variable "kiln_commit" {
  type    = string
  default = "unknown"
}

variable "kiln_run_id" {
  type    = string
  default = "unknown"
}

source "amazon-ebs" "example" {
  region              = "us-east-1"
  custom_endpoint_ec2 = var.endpoint
  communicator        = "none"
  source_ami          = "ami-1e749f67"
  instance_type       = "t3.micro"
  ami_name            = "kiln-example-${regex_replace(var.kiln_run_id, "[^a-zA-Z0-9-]", "-")}"
}

build {
  sources = ["source.amazon-ebs.example"]

  provisioner "shell-local" {
    inline = ["echo baking the example at ${var.kiln_commit}"]
  }
}
