// What a first visit opens with. Both operations below work as shown once
// the password is right and the token is in the headers editor.

export const DEFAULT_HEADERS = `{
  "Authorization": "Bearer <token from the login mutation>"
}
`;

export const DEFAULT_QUERY = `# VoIPbin customer API
#
# 1. Click inside "Login" below, put
#    in your password, and press
#    Ctrl-Enter (or the run button).
# 2. Copy the "token" it returns into
#    the Headers tab below, in place
#    of <token from the login
#    mutation>.
# 3. Run "Me" the same way.
#
# Docs: the book icon (left).
# Explorer: the folder icon, to
# build queries by ticking fields.

mutation Login {
  login(input: {
    username: "admin"
    password: "change-me-please"
  }) {
    token
    expiresAt
  }
}

query Me {
  me {
    agent {
      username
    }
    customer {
      id
      username
    }
  }
}
`;
