package policy

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/cel-go/cel"

	"github.com/vmcp/vmcp/internal/identity"
)

// The variables a condition may read.
const (
	varSubject   = "subject"   // string: the caller's subject, "" when anonymous
	varIssuer    = "issuer"    // string: its issuer ("apikey" for an API key)
	varScopes    = "scopes"    // list(string)
	varClaims    = "claims"    // map(string, dyn): the verified token's claims
	varKind      = "kind"      // string: "tool", "resource" or "prompt"
	varName      = "name"      // string: the item's name as the client sees it (a resource's URI)
	varBackend   = "backend"   // string: the backend serving it
	varArguments = "arguments" // map(string, dyn): the call's arguments; {} when listing
)

// costLimit bounds one condition's evaluation, so that no rule (say, a
// comprehension over a large argument) can stall a call.
const costLimit = 100_000

func newEnv() (*cel.Env, error) {
	env, err := cel.NewEnv(
		cel.Variable(varSubject, cel.StringType),
		cel.Variable(varIssuer, cel.StringType),
		cel.Variable(varScopes, cel.ListType(cel.StringType)),
		cel.Variable(varClaims, cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable(varKind, cel.StringType),
		cel.Variable(varName, cel.StringType),
		cel.Variable(varBackend, cel.StringType),
		cel.Variable(varArguments, cel.MapType(cel.StringType, cel.DynType)),
	)
	if err != nil {
		return nil, fmt.Errorf("policy: CEL environment: %w", err)
	}
	return env, nil
}

// compile checks a condition and reports whether it reads arguments.
func compile(env *cel.Env, src string) (cel.Program, bool, error) {
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, false, errors.New(iss.Err().Error())
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, false, fmt.Errorf("must be a bool expression, not %s", ast.OutputType())
	}
	usesArgs := false
	for _, ref := range ast.NativeRep().ReferenceMap() {
		if ref.Name == varArguments {
			usesArgs = true
		}
	}
	prg, err := env.Program(ast, cel.CostLimit(costLimit), cel.InterruptCheckFrequency(100))
	if err != nil {
		return nil, false, err
	}
	return prg, usesArgs, nil
}

var emptyMap = map[string]any{}

func newVars(id *identity.Identity, it Item, args map[string]any) map[string]any {
	vars := map[string]any{
		varSubject: "", varIssuer: "", varScopes: []string{}, varClaims: emptyMap,
		varKind: it.Kind.String(), varName: it.Name, varBackend: it.Backend, varArguments: emptyMap,
	}
	if id != nil && id.Subject != "" {
		vars[varSubject], vars[varIssuer] = id.Subject, id.Issuer
		if id.Scopes != nil {
			vars[varScopes] = id.Scopes
		}
		if id.Claims != nil {
			vars[varClaims] = id.Claims
		}
	}
	if args != nil {
		vars[varArguments] = args
	}
	return vars
}

// holds evaluates the rule's condition. An evaluation error fails
// closed: it holds for a deny rule and not for an allow rule.
func (r *compiled) holds(ctx context.Context, vars map[string]any) bool {
	if r.prg == nil {
		return true
	}
	out, _, err := r.prg.ContextEval(ctx, vars)
	if err != nil {
		return !r.Allow
	}
	b, ok := out.Value().(bool)
	return ok && b
}
