# The replay recorder's bake template (record_test.go): amazon-ebs against
# moto, with no instance to connect to. Copied from test/ami's fixture, minus
# what only those tests need.

# moto's EC2 endpoint; Packer 1.6.6 ignores AWS_ENDPOINT_URL. Credentials
# come from the worker's environment.
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

variable "kiln_pipeline" {
  type    = string
  default = "unknown"
}

variable "kiln_ref" {
  type    = string
  default = "unknown"
}

source "amazon-ebs" "main" {
  region              = "us-east-1"
  custom_endpoint_ec2 = var.endpoint
  communicator        = "none"
  source_ami          = "ami-1e749f67"
  instance_type       = "t3.micro"
  ami_name            = "kiln-${regex_replace(var.kiln_run_id, "[^a-zA-Z0-9-]", "-")}-{{timestamp}}"
}

build {
  sources = ["source.amazon-ebs.main"]

  provisioner "shell-local" {
    inline = ["echo baking ${var.kiln_pipeline} at ${var.kiln_commit} for ${var.kiln_ref}"]
  }
}
