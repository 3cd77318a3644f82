# The app AMI, built on the newest base AMI kiln tested: the source AMI
# comes from kiln's own Packer plugin. The provisioner fails the bake unless
# that is the AMI the trigger gave the run as kiln_base_ami.
variable "endpoint" {
  type = string
}

variable "kiln_run_id" {
  type    = string
  default = "unknown"
}

variable "kiln_base_ami" {
  type    = string
  default = "none"
}

data "kiln-ami" "base" {
  pipeline = "base"
  ref      = "main"
  region   = "us-east-1"
  endpoint = var.endpoint
}

source "amazon-ebs" "app" {
  region              = "us-east-1"
  custom_endpoint_ec2 = var.endpoint
  communicator        = "none"
  source_ami          = data.kiln-ami.base.id
  instance_type       = "t3.micro"
  ami_name            = "app-${regex_replace(var.kiln_run_id, "[^a-zA-Z0-9-]", "-")}-{{timestamp}}"
}

build {
  sources = ["source.amazon-ebs.app"]

  provisioner "shell-local" {
    inline = [
      "echo building on ${data.kiln-ami.base.id} from ${data.kiln-ami.base.commit}, run ${data.kiln-ami.base.run}",
      "test '${data.kiln-ami.base.id}' = '${var.kiln_base_ami}'",
    ]
  }
}
