# The bake template of the test repository: amazon-ebs against moto, with no
# instance to connect to. It sets no tags of its own, so every kiln:* tag the
# tests find was put there by kiln.

# The EC2 endpoint (the recording proxy in front of moto); Packer 1.6.6
# ignores AWS_ENDPOINT_URL. Credentials come from the worker's environment.
variable "endpoint" {
  type = string
}

variable "region" {
  type    = string
  default = "us-east-1"
}

# The provisioner's last command; a pipeline sets "exit 7" to fail the bake.
variable "script" {
  type    = string
  default = "echo provisioned"
}

# Set by kiln from stages.bake.secret_vars; Packer prints it in clear in its
# machine-readable output, so kiln must scrub it.
variable "secret_token" {
  type      = string
  sensitive = true
  default   = "none"
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
  region              = var.region
  custom_endpoint_ec2 = var.endpoint
  communicator        = "none"
  source_ami          = "ami-1e749f67"
  instance_type       = "t3.micro"
  ami_name            = "kiln-${regex_replace(var.kiln_run_id, "[^a-zA-Z0-9-]", "-")}-{{timestamp}}"
  ami_regions         = ["us-west-2"]
}

build {
  sources = ["source.amazon-ebs.main"]

  provisioner "shell-local" {
    inline = [
      "echo baking ${var.kiln_pipeline} at ${var.kiln_commit} for ${var.kiln_ref}",
      "echo the token is ${var.secret_token}",
      var.script,
    ]
  }
}
