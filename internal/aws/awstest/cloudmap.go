package awstest

import (
	"encoding/json"
)

// namespacePerName sends CreatePrivateDnsNamespace to moto with the VPC
// suffixed by the namespace's name. moto 5.2.1 refuses a second private
// namespace in a VPC (ConflictingDomainExists) whatever its name; AWS
// refuses only one whose name is taken in that VPC, which this keeps:
// the same name in the same VPC still collides.
func namespacePerName(c *Call) *Response {
	var req map[string]any
	if err := json.Unmarshal(c.Body, &req); err != nil {
		return nil
	}
	vpc, _ := req["Vpc"].(string)
	n, _ := req["Name"].(string)
	if vpc == "" || n == "" {
		return nil
	}
	req["Vpc"] = vpc + "/" + n
	body, err := json.Marshal(req)
	if err != nil {
		return nil
	}
	c.Body = body
	return nil
}
