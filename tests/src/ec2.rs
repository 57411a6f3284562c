//! EC2 in the emulator, for the tests that need an instance outside any Auto Scaling group.

use crate::endpoint;

/// Launches an EC2 instance outside any Auto Scaling group in the emulator's default account,
/// with `tags`, and returns its id. The tests build no EC2 client: this is RunInstances in
/// EC2's Query protocol, posted to moto (which routes by the credential scope and does not
/// check the signature).
pub fn run_instance(tags: &[(&str, &str)]) -> String {
    let mut form: Vec<(String, String)> = [
        ("Action", "RunInstances"),
        ("Version", "2016-11-15"),
        ("ImageId", "ami-12c6146b"),
        ("InstanceType", "t3.micro"),
        ("MinCount", "1"),
        ("MaxCount", "1"),
        ("TagSpecification.1.ResourceType", "instance"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (n, (k, v)) in tags.iter().enumerate() {
        form.push((
            format!("TagSpecification.1.Tag.{}.Key", n + 1),
            (*k).to_owned(),
        ));
        form.push((
            format!("TagSpecification.1.Tag.{}.Value", n + 1),
            (*v).to_owned(),
        ));
    }
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let body = ureq::post(&endpoint())
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .send_form(pairs)
        .expect("RunInstances")
        .body_mut()
        .read_to_string()
        .expect("RunInstances' answer");
    let start = body.find("<instanceId>").expect("an instance id") + "<instanceId>".len();
    let end = body[start..].find('<').expect("an instance id") + start;
    body[start..end].to_owned()
}
