# A bake template as a kiln user would write it, pointed at moto.
variable "endpoint" {
  type = string
}

variable "name" {
  type = string
}

variable "script" {
  type    = string
  default = "echo provisioning"
}

variable "secret" {
  type      = string
  sensitive = true
  default   = "none"
}

# Set by kiln through PKR_VAR_kiln_commit.
variable "kiln_commit" {
  type    = string
  default = "unknown"
}

source "amazon-ebs" "main" {
  access_key          = "test"
  secret_key          = "test"
  region              = "us-east-1"
  custom_endpoint_ec2 = var.endpoint
  communicator        = "none"
  source_ami          = "ami-1e749f67"
  instance_type       = "t3.micro"
  ami_name            = "kiln-${var.name}-{{timestamp}}"
  ami_regions         = ["us-west-2"]
  tags = {
    "kiln:commit" = var.kiln_commit
    "Secret"      = var.secret
  }
}

build {
  sources = ["source.amazon-ebs.main"]

  provisioner "shell-local" {
    inline = ["echo the secret is ${var.secret}", var.script]
  }
}
