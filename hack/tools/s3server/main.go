// Command s3server is an S3-compatible server on loopback for exec-proxy's tests: gofakes3's
// in-memory backend (or its bolt backend, a file that outlives the process) behind a check of each
// request's AWS Signature Version 4 against one access key, so that wrong credentials fail as they
// do on S3. It prints "listening on http://ADDR" once it serves.
package main

import (
	"bufio"
	"context"
	"crypto/hmac"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on (loopback)")
	bucket := flag.String("bucket", "recordings", "bucket created at start")
	db := flag.String("db", "", "bolt file that keeps the objects (empty: in memory)")
	flag.Parse()
	key, secret := os.Getenv("S3SERVER_ACCESS_KEY_ID"), os.Getenv("S3SERVER_SECRET_ACCESS_KEY")
	if key == "" || secret == "" {
		log.Fatal("S3SERVER_ACCESS_KEY_ID and S3SERVER_SECRET_ACCESS_KEY must be set: the one key the server accepts")
	}
	var backend gofakes3.Backend = s3mem.New()
	if *db != "" {
		b, err := s3bolt.NewFile(*db)
		if err != nil {
			log.Fatalf("opening %s: %v", *db, err)
		}
		backend = b
	}
	if err := backend.CreateBucket(*bucket); err != nil && !gofakes3.HasErrorCode(err, gofakes3.ErrBucketAlreadyExists) {
		log.Fatalf("creating bucket %s: %v", *bucket, err)
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on http://%s\n", l.Addr())
	os.Stdout.Sync()
	srv := &http.Server{Handler: &signed{key: key, secret: secret, next: gofakes3.New(backend).Server()}, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(l))
}

// signed passes on only requests signed with the one key, answering others as S3 does.
type signed struct {
	key, secret string
	next        http.Handler
}

func (s *signed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if code, err := s.verify(r); err != nil {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, err)
		return
	}
	s.next.ServeHTTP(w, r)
}

// verify signs a copy of r's signed headers with the secret, as the client did, and compares.
func (s *signed) verify(r *http.Request) (string, error) {
	auth := r.Header.Get("Authorization")
	const scheme = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, scheme) {
		return "AccessDenied", errors.New("only AWS Signature Version 4 is accepted")
	}
	fields := map[string]string{}
	for _, f := range strings.Split(strings.TrimPrefix(auth, scheme), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/") // key/date/region/service/aws4_request
	if len(scope) != 5 {
		return "AuthorizationHeaderMalformed", errors.New("malformed credential scope")
	}
	if scope[0] != s.key {
		return "InvalidAccessKeyId", errors.New("the AWS access key ID you provided does not exist in our records")
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return "AccessDenied", errors.New("missing or malformed X-Amz-Date")
	}
	c := r.Clone(context.Background())
	c.Header = http.Header{}
	for _, h := range strings.Split(fields["SignedHeaders"], ";") {
		if h == "host" {
			continue
		}
		c.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	err = v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).
		SignHTTP(context.Background(), aws.Credentials{AccessKeyID: s.key, SecretAccessKey: s.secret}, c, payload, scope[3], scope[2], at)
	if err != nil {
		return "AccessDenied", err
	}
	want := signature(c.Header.Get("Authorization"))
	if !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return "SignatureDoesNotMatch", errors.New("the request signature we calculated does not match the signature you provided")
	}
	return "", nil
}

func signature(auth string) string {
	sc := bufio.NewScanner(strings.NewReader(strings.ReplaceAll(auth, ",", "\n")))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "Signature="); ok {
			return v
		}
	}
	return ""
}
